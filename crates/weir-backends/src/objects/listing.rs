//! A page of a bucket's keys in S3's order (the keys' UTF-8 bytes), read from the folder tree
//! with bounded memory.
//!
//! Key order is a walk of the tree in which a folder's entries are taken by name, a folder's
//! name counted with its `/`: `p/a-c` < `p/a/…` < `p/a0` (`-` < `/` < `0`), because no entry's
//! name holds a `/`. A page descends from the deepest folder its prefix names and takes the
//! first keys after `start_after`, skipping folders that hold none.
//!
//! A folder's names come from `readdir` in no useful order, and one folder may hold hundreds of
//! thousands of files (a year of archived uploads). Sorting them would hold them all; instead a
//! page reads the folder's names and keeps only the smallest ones after its cursor, at most as
//! many as the page still needs, in a bounded heap. That is the buffering this store cannot
//! avoid without an index of its own: at most one page of names (the page size plus one, so at
//! most 1,001) per folder level of the walk, whatever the folder's size. The price is time:
//! each page reads all the names of the folders it walks, so listing a folder of N files in
//! pages of P reads about N²/P names (200,000 files in pages of 1,000: 40 million names, read
//! from the page cache). Entries the walk does not take cost no `stat`: only the keys of the
//! page are looked at, with their extended attribute.
//!
//! Staging names (`#<digits>`, see the store's docs) and names that are not UTF-8 are not keys
//! and are skipped.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// The keys a page walk found, in order, each with its file.
pub(crate) struct Found {
    pub key: String,
    pub path: PathBuf,
    /// A folder marker (key ending in `/`): `path` is the marked folder (see `folders`).
    pub marker: bool,
}

/// The first `want` keys of the bucket folder `bucket_dir` that start with `prefix` and come
/// after `start_after`, in key order. Fewer when there are no more.
pub(crate) fn first_keys(
    bucket_dir: &Path,
    prefix: &str,
    start_after: Option<&str>,
    want: usize,
) -> std::io::Result<Vec<Found>> {
    // A bound before the prefix bounds nothing.
    let after = start_after.filter(|a| *a >= prefix);
    let base = prefix.rfind('/').map_or("", |i| &prefix[..=i]);
    let mut walk = Walk { prefix, after, want, found: Vec::with_capacity(want.min(1024)) };
    let dir =
        if base.is_empty() { bucket_dir.to_owned() } else { bucket_dir.join(base.trim_end_matches('/')) };
    // The folder the prefix names may itself be a marker (`csv/` listed with prefix `csv/`).
    if !base.is_empty() {
        walk.marker(&dir, base);
    }
    if walk.found.len() < want {
        walk.folder(&dir, base)?;
    }
    Ok(walk.found)
}

struct Walk<'a> {
    prefix: &'a str,
    after: Option<&'a str>,
    want: usize,
    found: Vec<Found>,
}

/// A folder entry, by its key (folders with their trailing `/`).
#[derive(PartialEq, Eq)]
struct Entry {
    key: String,
    is_dir: bool,
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key.as_bytes().cmp(other.key.as_bytes())
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Walk<'_> {
    /// Takes the keys of the folder `dir`, whose entries' keys start with `dir_key`, in order,
    /// until the page is full or the folder has no more.
    fn folder(&mut self, dir: &Path, dir_key: &str) -> std::io::Result<()> {
        let mut cursor: Option<String> = None;
        loop {
            let need = self.want - self.found.len();
            if need == 0 {
                return Ok(());
            }
            let batch = self.smallest_entries(dir, dir_key, cursor.as_deref(), need)?;
            let exhausted = batch.len() < need;
            for entry in batch {
                let name = &entry.key[dir_key.len()..];
                if entry.is_dir {
                    let sub = dir.join(name.trim_end_matches('/'));
                    // A marked folder is an object too, whose key comes just before what it holds.
                    self.marker(&sub, &entry.key);
                    if self.found.len() == self.want {
                        return Ok(());
                    }
                    self.folder(&sub, &entry.key)?;
                } else {
                    self.found.push(Found { path: dir.join(name), key: entry.key.clone(), marker: false });
                }
                if self.found.len() == self.want {
                    return Ok(());
                }
                cursor = Some(entry.key);
            }
            if exhausted {
                return Ok(());
            }
        }
    }

    /// Takes the folder `dir` (key `key`, ending in `/`) as a key of the page when it is a
    /// folder marker under the prefix and after `start_after`.
    fn marker(&mut self, dir: &Path, key: &str) {
        if key.starts_with(self.prefix)
            && self.after.is_none_or(|a| key > a)
            && super::folders::is_marked(dir)
        {
            self.found.push(Found { key: key.to_owned(), path: dir.to_owned(), marker: true });
        }
    }

    /// The `need` smallest entries of `dir` after `cursor` that can hold keys of the page, in
    /// order: one pass over the folder's names, keeping at most `need` of them.
    fn smallest_entries(
        &self,
        dir: &Path,
        dir_key: &str,
        cursor: Option<&str>,
        need: usize,
    ) -> std::io::Result<Vec<Entry>> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            // Nothing under the prefix, or a file where the prefix names a folder.
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
                return Ok(Vec::new())
            }
            Err(e) => return Err(e),
        };
        // A max-heap of the smallest entries so far: its top is the one to drop next.
        let mut heap: BinaryHeap<Entry> = BinaryHeap::with_capacity(need.min(1024) + 1);
        let mut key = String::with_capacity(dir_key.len() + 64);
        for entry in entries {
            let entry = match entry {
                Ok(e) => e,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str() else { continue };
            if is_staging_name(name) {
                continue;
            }
            let is_dir = match entry.file_type() {
                Ok(t) if t.is_symlink() => std::fs::metadata(entry.path()).is_ok_and(|m| m.is_dir()),
                Ok(t) => t.is_dir(),
                Err(_) => continue,
            };
            key.clear();
            key.push_str(dir_key);
            key.push_str(name);
            if is_dir {
                key.push('/');
            }
            if !self.may_hold_keys(&key, is_dir) || cursor.is_some_and(|c| key.as_str() <= c) {
                continue;
            }
            if heap.len() == need && heap.peek().is_some_and(|top| key.as_bytes() >= top.key.as_bytes()) {
                continue;
            }
            heap.push(Entry { key: key.clone(), is_dir });
            if heap.len() > need {
                heap.pop();
            }
        }
        Ok(heap.into_sorted_vec())
    }

    /// Whether the entry with this key (a folder's ending in `/`) is, or may hold, a key of the
    /// page: one starting with the prefix and after `start_after`.
    fn may_hold_keys(&self, key: &str, is_dir: bool) -> bool {
        if is_dir {
            (key.starts_with(self.prefix) || self.prefix.starts_with(key))
                && self.after.is_none_or(|a| key > a || a.starts_with(key))
        } else {
            key.starts_with(self.prefix) && self.after.is_none_or(|a| key > a)
        }
    }
}

/// A name the store stages a file under (`<name>#<digits>`), which is not a key.
fn is_staging_name(name: &str) -> bool {
    match name.rsplit_once('#') {
        Some((_, digits)) => !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(dir: &Path, prefix: &str, after: Option<&str>, want: usize) -> Vec<String> {
        first_keys(dir, prefix, after, want).unwrap().into_iter().map(|f| f.key).collect()
    }

    /// Pages of one large folder, read a few names at a time, come out whole and in order.
    #[test]
    fn a_large_folder_pages_in_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/sub")).unwrap();
        let mut want = Vec::new();
        for i in (0..500).rev() {
            std::fs::write(dir.path().join(format!("a/f{i:04}")), b"").unwrap();
            want.push(format!("a/f{i:04}"));
        }
        std::fs::write(dir.path().join("a/sub/x"), b"").unwrap();
        std::fs::write(dir.path().join("a/f0001#123"), b"").unwrap();
        want.push("a/sub/x".into());
        want.sort();
        let mut got = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = keys(dir.path(), "a/", after.as_deref(), 7);
            assert!(page.len() <= 7);
            got.extend(page.iter().cloned());
            match page.last() {
                Some(last) if page.len() == 7 => after = Some(last.clone()),
                _ => break,
            }
        }
        assert_eq!(got, want);
        assert_eq!(keys(dir.path(), "a/f04", Some("a/f0450"), 3), ["a/f0451", "a/f0452", "a/f0453"]);
    }

    #[test]
    fn staging_names_are_not_keys() {
        assert!(is_staging_name("x.csv#1234"));
        assert!(!is_staging_name("x.csv#"));
        assert!(!is_staging_name("x#y.csv"));
        assert!(!is_staging_name("x.csv"));
    }
}
