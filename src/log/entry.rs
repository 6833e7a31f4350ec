//! Which kind of entry a normal Raft entry's data is, by its first byte:
//! nothing (the empty entry a new leader appends), a record batch, a
//! command, or something this build does not know. Only the kind: the
//! bytes are validated by the kind's own parser.

use super::batch::BATCH_MAGIC;
use super::command::COMMAND_MAGIC;

/// The kind of a normal entry's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// No data: a leader's empty entry. Takes no offset.
    Empty,
    /// A record batch (`batch.rs`).
    Batch,
    /// A command (`command.rs`).
    Command,
    /// A first byte no kind starts with.
    Unknown(u8),
}

impl EntryKind {
    /// The kind of `data`.
    pub fn of(data: &[u8]) -> EntryKind {
        match data.first() {
            None => EntryKind::Empty,
            Some(&BATCH_MAGIC) => EntryKind::Batch,
            Some(&COMMAND_MAGIC) => EntryKind::Command,
            Some(&other) => EntryKind::Unknown(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::command::Command;

    #[test]
    fn kinds_by_first_byte() {
        assert_eq!(EntryKind::of(b""), EntryKind::Empty);
        assert_eq!(EntryKind::of(&[0xB1, 0]), EntryKind::Batch);
        assert_eq!(
            EntryKind::of(&Command::Truncate { before_offset: 1 }.encode()),
            EntryKind::Command
        );
        assert_eq!(EntryKind::of(&[0x08, 1]), EntryKind::Unknown(0x08));
    }
}
