//! Grants on the system.
pub mod group;
pub mod sudoers;
