//! The subcommands that do one thing and print it; `cli` parses the arguments and maps their
//! result to an exit code.

pub mod check;
pub mod describe;
pub mod milestones;
