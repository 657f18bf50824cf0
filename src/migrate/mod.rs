//! The migration engine (issue 3), being built in steps: reading migration
//! folders in six formats ([`source`]), splitting SQL into statements for
//! migrations that run outside a transaction ([`split`]), deciding what is
//! pending against the history table ([`plan`]), and applying it
//! ([`apply`], [`history`]).

pub mod apply;
pub mod history;
pub mod plan;
pub mod source;
pub mod split;
