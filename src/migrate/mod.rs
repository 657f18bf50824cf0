//! The migration engine: reading migration folders in six formats
//! ([`source`]; statements split by [`crate::sqlsplit`]), deciding what is pending against the
//! history table ([`plan`], [`history`]) and the native tools' own
//! ([`native`]), applying it ([`apply`]), an
//! external migrator instead ([`external`]), new files ([`scaffold`]), changed
//! checksums accepted ([`repair`]), and
//! all of it together ([`migrator`]).

pub mod apply;
pub mod external;
pub mod history;
pub mod migrator;
pub mod native;
pub mod plan;
pub mod repair;
pub mod scaffold;
pub mod source;
