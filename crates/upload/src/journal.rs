//! The upload journal: what was sent, what job it became, and where it stands, so that a re-run
//! continues without sending anything twice.

use crate::client::{epoch_now, Error, JobState, JobSubmitted};
use serde::{Deserialize, Serialize};
use std::io;
use std::path::Path;

/// The journal's file name in a manifest's directory.
pub const JOURNAL_FILE: &str = "upload-journal.json";

/// Every part an upload has dealt with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    /// The format version (1).
    pub version: u32,
    /// One entry per file, in the order first seen.
    pub parts: Vec<JournalEntry>,
}

/// One file of an upload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// The file, as a canonical path (absolute, symlinks and `..` resolved; journals from before
    /// that used the absolute path as given, and are taken over).
    pub file: String,
    /// Its SHA-256 when it was first sent (lower-case hex).
    pub sha256: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// The job type it was sent as.
    pub job: String,
    /// The SHA-256 of the job's parameters (the `json` of the call without the file): a part is
    /// only ever resumed into the same job.
    #[serde(default)]
    pub params_sha256: String,
    /// How many times a submission was started.
    pub attempts: u32,
    /// When it was first sent (epoch seconds).
    pub first_sent_at: Option<u64>,
    /// When it was last sent.
    pub last_sent_at: Option<u64>,
    /// When the last send had handed over the whole file, until its answer came: set with no job
    /// id, the job may exist although no answer said so.
    #[serde(default)]
    pub body_sent_at: Option<u64>,
    /// The job id the API gave; once set, the part is never sent again.
    pub job_id: Option<String>,
    /// When the job id came back.
    pub submitted_at: Option<u64>,
    /// The job's last known status.
    pub status: Option<String>,
    /// When that status was read.
    pub status_at: Option<u64>,
    /// The last error, if the part has no job id.
    pub last_error: Option<String>,
    /// Whether a submission may have been applied twice (an answer was lost after the whole
    /// request was sent, and it was sent again).
    pub possibly_duplicated: bool,
}

impl JournalEntry {
    /// Whether a send of this entry may have been applied: it has a job id, or a send handed over
    /// the whole file and its answer was lost. Until then, the file is not bound to what was
    /// sent: a send refused by the API, or abandoned before its last byte, made no job.
    pub fn may_have_applied(&self) -> bool {
        self.job_id.is_some() || self.body_sent_at.is_some() || self.possibly_duplicated
    }

    /// Notes that a submission starts now (an error of an earlier one is no longer the last
    /// word: a run that ends with this one out leaves no error, which says the call was out).
    pub(crate) fn record_attempt(&mut self) {
        self.last_error = None;
        self.attempts += 1;
        self.first_sent_at.get_or_insert(epoch_now());
        self.last_sent_at = Some(epoch_now());
    }

    /// Notes the job the API answered with: from now on the entry is never sent again.
    pub(crate) fn record_submitted(&mut self, submitted: &JobSubmitted) {
        self.body_sent_at = None;
        self.possibly_duplicated |= submitted.possibly_duplicated;
        self.job_id = Some(submitted.job_id.clone());
        self.submitted_at = Some(epoch_now());
        self.record_status(&submitted.status);
        self.last_error = None;
    }

    /// Notes the job's status, as read now.
    pub(crate) fn record_status(&mut self, status: &JobState) {
        self.status = Some(status.as_str().to_string());
        self.status_at = Some(epoch_now());
    }

    /// Notes a submission that failed, and whether it may have been applied all the same.
    pub(crate) fn record_failure(&mut self, error: &Error) {
        self.possibly_duplicated |= error.possibly_applied();
        self.last_error = Some(sailbulk_parse::error_chain(error));
    }
}

impl Journal {
    /// Reads a journal; a missing file is an empty journal.
    pub fn load(path: &Path) -> io::Result<Journal> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("not an upload journal: {e}"),
                )
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Journal {
                version: 1,
                parts: Vec::new(),
            }),
            Err(e) => Err(e),
        }
    }

    /// Writes the journal atomically (a temporary file renamed over the old one).
    pub fn save(&self, path: &Path) -> io::Result<()> {
        let mut text = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        text.push(b'\n');
        sailbulk_build::write_atomic(path, &text)
    }

    /// The entry of a file.
    pub fn entry(&self, file: &str) -> Option<&JournalEntry> {
        self.parts.iter().find(|e| e.file == file)
    }

    /// The entry of a file, made if missing.
    pub fn entry_mut(&mut self, file: &str) -> &mut JournalEntry {
        match self.parts.iter().position(|e| e.file == file) {
            Some(i) => &mut self.parts[i],
            None => {
                self.parts.push(JournalEntry {
                    file: file.to_string(),
                    ..JournalEntry::default()
                });
                self.parts.last_mut().expect("just pushed")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attempt_under_way_has_no_error_of_an_earlier_one() {
        // A run killed with the attempt out must leave no error behind: that is how the next
        // run tells an unanswered call from a failed one.
        let mut entry = JournalEntry {
            attempts: 1,
            last_error: Some("HTTP 503".into()),
            ..JournalEntry::default()
        };
        entry.record_attempt();
        assert_eq!(entry.attempts, 2);
        assert!(entry.last_error.is_none());
    }

    #[test]
    fn round_trips_and_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        let mut journal = Journal::load(&path).unwrap();
        assert!(journal.parts.is_empty());
        journal.entry_mut("/a").job_id = Some("j".into());
        journal.entry_mut("/a").attempts = 2;
        journal.entry_mut("/b");
        journal.save(&path).unwrap();
        let again = Journal::load(&path).unwrap();
        assert_eq!(again, journal);
        assert_eq!(again.entry("/a").unwrap().attempts, 2);
        std::fs::write(&path, b"{}x").unwrap();
        assert!(Journal::load(&path).is_err());
    }
}
