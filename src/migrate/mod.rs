//! The migration engine (issue 3), being built in steps. So far: reading
//! migration folders in six formats, and the SQL statement splitter that
//! migrations running outside a transaction need, and planning against the
//! history table. Nothing here is reachable
//! from the command line yet.

pub mod plan;
pub mod source;
pub mod split;
