//! Where events come from: JSON-lines files (read once or followed).

pub mod file;
pub mod lines;

pub use file::FileFollower;
pub use lines::{Line, LineSplitter};
