//! sudoers drop-ins (being written).
