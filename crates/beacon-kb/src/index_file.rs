//! Persisted per-guild index files: one file per guild under the index folder
//! (`<data dir>/kb-index/guild-<id>.kbi`), holding everything a search needs (tantivy's files,
//! the chunk table, the `f32` rows with their int8 codes) so a fresh process answers without
//! rebuilding anything or asking the database for more than the guild's index version.
//!
//! The files are derived data. Each carries a stamp (guild, index version, embedding model); a
//! file whose stamp does not match the database, or that is missing, truncated or corrupt
//! (a checksum covers every byte), is not used and the caller rebuilds it from the database.
//! Writes go to a temporary file that is fsynced and then renamed over the old one (and the
//! folder fsynced), so a crash mid-write leaves the previous file in place. A writer never
//! replaces a file stamped with a newer version than its own (two writers of one guild finishing
//! out of order leave the newer file).
//!
//! Layout, little-endian: `MAGIC`, format `u32`, header length `u32`, the header (JSON: stamp and
//! section lengths, padded with spaces), the sections (dense `f32` rows, their scales and int8
//! codes, chunk ids, chunk offsets, chunk data, tantivy's files), each starting at a multiple of
//! 64 bytes and zero-padded to the next one, then a `u64` checksum of everything before it.
//!
//! Loading maps the file (on Unix) and uses the sections in place: the `f32` rows, the int8
//! codes, the chunk data and tantivy's files are never copied (aligned sections make the rows
//! readable as `f32`), so a fresh process pays for one checksum pass over the file and little
//! else. A mapped file is safe to use because index files are never modified in place: writers
//! rename a new file over the old one, and the mapping keeps the old one alive.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use tantivy::directory::OwnedBytes;

use crate::bm25::Bm25Index;
use crate::dense::DenseIndex;
use crate::error::{KbError, Result};
use crate::retriever::{ChunkTable, GuildIndex};

const MAGIC: &[u8; 8] = b"BEACONKB";
/// Bumped whenever the layout changes; a file of another format is rebuilt.
pub const FORMAT: u32 = 2;
/// Sections start at multiples of this many bytes from the file's start (a cache line: `f32`
/// rows are then aligned for in-place use and for the scans).
const ALIGN: usize = 64;
/// Longest header accepted.
const MAX_HEADER: usize = 16 << 20;
/// Temporary files older than this are left-overs of a crashed writer and are removed.
const STALE_TEMP: Duration = Duration::from_secs(600);

/// What an index file was built from: it serves only while all of it matches.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IndexStamp {
    /// The guild.
    pub guild_id: u64,
    /// The guild's index version in the database when the chunks were read.
    pub version: i64,
    /// The embedding model of the dense part (`None`: BM25 only).
    pub model: Option<String>,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Header {
    stamp: IndexStamp,
    chunks: usize,
    /// Vector dimension; 0 when there is no dense part.
    dim: usize,
    /// Tantivy's files: name and length.
    bm25_files: Vec<(String, usize)>,
    chunk_data_len: usize,
}

/// Why no usable index came back from disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadMiss {
    /// There is no file for the guild.
    Missing,
    /// There is a file, built from another version or model (normal after a sync elsewhere).
    Stale(IndexStamp),
    /// There is a file in another layout (normal after an upgrade of Beacon).
    Format(u32),
}

/// What [`IndexDir::save`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Saved {
    /// The file now holds the index.
    Written,
    /// The guild's file was already stamped with a newer version (another writer finished
    /// first); it was kept and this index was not written.
    KeptNewer(IndexStamp),
}

/// Held while a writer compares the guild's current file with its own version and renames its
/// file into place, so two writers in this process cannot both pass the comparison and then
/// rename out of order.
static RENAMES: Mutex<()> = Mutex::new(());

/// Fast 64-bit checksum (four independent multiply-rotate lanes over 8-byte words): detects
/// truncation and flipped bits at several GB/s, so checking a 30 MB index costs a few ms.
fn checksum(bytes: &[u8]) -> u64 {
    const P1: u64 = 0x9E37_79B1_85EB_CA87;
    const P2: u64 = 0xC2B2_AE3D_27D4_EB4F;
    let mut lanes = [P1, P2, P1 ^ P2, P1.wrapping_add(P2)];
    let blocks = bytes.chunks_exact(32);
    let tail = blocks.remainder();
    for b in blocks {
        for (l, w) in lanes.iter_mut().zip(b.chunks_exact(8)) {
            let mut word = [0u8; 8];
            word.copy_from_slice(w);
            *l = (*l ^ u64::from_le_bytes(word)).wrapping_mul(P1).rotate_left(31);
        }
    }
    let mut h = (bytes.len() as u64).wrapping_mul(P2);
    for l in lanes {
        h = (h ^ l).wrapping_mul(P2).rotate_left(27);
    }
    for b in tail {
        h = (h ^ u64::from(*b)).wrapping_mul(P1).rotate_left(11);
    }
    h ^ (h >> 29)
}

/// Rewrites the checksum at the end of an index file's bytes so that it matches the rest — what
/// a hostile writer of the data folder could do. The fuzz harness (`crates/beacon-fuzz`) uses it
/// to reach the checks behind the checksum: a well-summed but hostile file must still be refused
/// by [`IndexDir::load`] (and the index rebuilt), never trusted.
pub fn reseal(file: &mut [u8]) {
    if let Some(content_len) = file.len().checked_sub(8) {
        let sum = checksum(&file[..content_len]);
        file[content_len..].copy_from_slice(&sum.to_le_bytes());
    }
}

/// The folder holding the guilds' index files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexDir {
    root: PathBuf,
}

impl IndexDir {
    /// Index files live in `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        IndexDir { root: root.into() }
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Path of `guild_id`'s index file.
    pub fn path(&self, guild_id: u64) -> PathBuf {
        self.root.join(format!("guild-{guild_id}.kbi"))
    }

    fn temp_prefix(guild_id: u64) -> String {
        format!(".guild-{guild_id}.kbi.tmp-")
    }

    /// Writes `index` as `stamp`'s file, atomically replacing the previous one unless that one
    /// is stamped with a newer version.
    pub fn save(&self, stamp: &IndexStamp, index: &GuildIndex) -> Result<Saved> {
        let bytes = encode(stamp, index)?;
        self.save_bytes(stamp, &bytes, |f, b| f.write_all(b))
    }

    /// Writes `bytes` (`stamp`'s file) through `write` into a temporary file, fsyncs it, renames
    /// it over the guild's file unless that one carries a newer version, and fsyncs the folder.
    /// On any failure, or when the newer file is kept, the temporary file is removed and the
    /// previous file is untouched.
    fn save_bytes(
        &self,
        stamp: &IndexStamp,
        bytes: &[u8],
        write: impl FnOnce(&mut std::fs::File, &[u8]) -> std::io::Result<()>,
    ) -> Result<Saved> {
        let guild_id = stamp.guild_id;
        std::fs::create_dir_all(&self.root).map_err(|e| KbError::io(&self.root, e))?;
        self.remove_stale_temps(guild_id);
        // Unique per process and write, so concurrent writers (a bot and `beacon ingest`) never
        // share a temporary file.
        static WRITES: AtomicU64 = AtomicU64::new(0);
        let tmp = self.root.join(format!(
            "{}{}-{}",
            Self::temp_prefix(guild_id),
            std::process::id(),
            WRITES.fetch_add(1, Ordering::Relaxed)
        ));
        let result = (|| {
            let mut f = std::fs::File::create_new(&tmp)?;
            write(&mut f, bytes)?;
            f.sync_all()?;
            drop(f);
            {
                let _renames = RENAMES.lock().unwrap_or_else(|p| p.into_inner());
                // Another process may still rename between this check and ours; that window is
                // the length of a header read, not of a whole write.
                if let Some(found) = self.stamp_on_disk(guild_id)
                    && found.version > stamp.version
                {
                    let _ = std::fs::remove_file(&tmp);
                    return Ok(Saved::KeptNewer(found));
                }
                std::fs::rename(&tmp, self.path(guild_id))?;
            }
            // The rename is durable once the folder's entry is.
            std::fs::File::open(&self.root)?.sync_all()?;
            Ok(Saved::Written)
        })();
        result.map_err(|e| {
            // Best effort: a temp file left behind is removed by a later write.
            let _ = std::fs::remove_file(&tmp);
            KbError::io(&tmp, e)
        })
    }

    /// The stamp of the guild's current file, if there is a readable one of this format.
    fn stamp_on_disk(&self, guild_id: u64) -> Option<IndexStamp> {
        let path = self.path(guild_id);
        let mut f = std::fs::File::open(&path).ok()?;
        match read_header(&mut f, &path) {
            Ok(Ok((header, _))) => Some(header.stamp),
            _ => None,
        }
    }

    /// Removes this guild's temporary files that a crashed writer left (old enough that no
    /// writer can still be busy with them).
    fn remove_stale_temps(&self, guild_id: u64) {
        let prefix = Self::temp_prefix(guild_id);
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return;
        };
        for e in entries.flatten() {
            let stale = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|age| age >= STALE_TEMP);
            if stale && e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    /// Loads `stamp.guild_id`'s index if its file exists and carries exactly `stamp`. A file
    /// that cannot be read or fails its checks is an error (the caller rebuilds).
    pub fn load(&self, stamp: &IndexStamp) -> Result<std::result::Result<GuildIndex, LoadMiss>> {
        let path = self.path(stamp.guild_id);
        let mut f = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Err(LoadMiss::Missing)),
            Err(e) => return Err(KbError::io(&path, e)),
        };
        // The header first: a stale file is recognised without reading its body.
        let (header, body_start) = match read_header(&mut f, &path)? {
            Ok(h) => h,
            Err(miss) => return Ok(Err(miss)),
        };
        if &header.stamp != stamp {
            return Ok(Err(LoadMiss::Stale(header.stamp)));
        }
        let corrupt = |what: &str| KbError::Index(format!("{}: {what}", path.display()));
        let len = f.metadata().map_err(|e| KbError::io(&path, e))?.len();
        let len = usize::try_from(len).map_err(|_| corrupt("too large"))?;
        let expected = body_len(&header).and_then(|b| b.checked_add(body_start)?.checked_add(8));
        // Checked before mapping, so a truncated file is never read past its end.
        if expected != Some(len) {
            return Err(corrupt(&format!("{len} bytes, header describes {expected:?}")));
        }
        let bytes = file_bytes(&mut f, len).map_err(|e| KbError::io(&path, e))?;
        decode(&header, bytes, body_start).map(Ok).map_err(|e| corrupt(&e.to_string()))
    }

    /// Guilds that have an index file here.
    pub fn guilds(&self) -> Vec<u64> {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name();
                name.to_str()?.strip_prefix("guild-")?.strip_suffix(".kbi")?.parse().ok()
            })
            .collect()
    }

    /// Deletes `guild_id`'s index file, if any.
    pub fn remove(&self, guild_id: u64) -> Result<()> {
        let path = self.path(guild_id);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(KbError::io(&path, e)),
            _ => Ok(()),
        }
    }
}

/// Reads the magic, format and header from the start of `f`. A file of another format is a
/// miss; one that is not an index file, or whose header is unreadable, is an error.
fn read_header(f: &mut std::fs::File, path: &Path) -> Result<std::result::Result<(Header, usize), LoadMiss>> {
    let corrupt = |what: &str| KbError::Index(format!("{}: {what}", path.display()));
    let mut head = [0u8; 16];
    f.read_exact(&mut head).map_err(|e| KbError::io(path, e))?;
    if &head[..8] != MAGIC {
        return Err(corrupt("not an index file"));
    }
    let format = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
    let header_len = u32::from_le_bytes([head[12], head[13], head[14], head[15]]) as usize;
    if format != FORMAT {
        return Ok(Err(LoadMiss::Format(format)));
    }
    if header_len > MAX_HEADER {
        return Err(corrupt("header too long"));
    }
    let mut header_bytes = vec![0u8; header_len];
    f.read_exact(&mut header_bytes).map_err(|e| KbError::io(path, e))?;
    let header: Header = serde_json::from_slice(&header_bytes).map_err(|e| corrupt(&format!("header: {e}")))?;
    Ok(Ok((header, 16 + header_len)))
}

/// The whole file (`len` bytes) as shared bytes: mapped where the platform allows it (no copy,
/// and the pages are the page cache's), else read into memory.
#[allow(unsafe_code)]
fn file_bytes(f: &mut std::fs::File, len: usize) -> std::io::Result<OwnedBytes> {
    #[cfg(unix)]
    {
        // SAFETY: index files are never written in place (writers rename a new file over the
        // old one, and the mapping keeps the old one), so the mapped bytes do not change while
        // the index uses them; a file truncated by hand is outside that contract.
        let mapped = unsafe { memmap2::MmapOptions::new().len(len).populate().map(&*f) };
        if let Ok(map) = mapped {
            return Ok(OwnedBytes::new(map));
        }
        // Some filesystems cannot map files; reading works everywhere.
    }
    use std::io::Seek;
    f.seek(std::io::SeekFrom::Start(0))?;
    let mut bytes = Vec::with_capacity(len);
    f.read_to_end(&mut bytes)?;
    Ok(OwnedBytes::new(bytes))
}

/// `n` rounded up to the next section boundary.
fn padded(n: usize) -> Option<usize> {
    n.checked_next_multiple_of(ALIGN)
}

/// The sections' lengths in file order, as the header describes them.
fn section_lens(h: &Header) -> Option<Vec<usize>> {
    let n = h.chunks;
    let mut out = Vec::with_capacity(6 + h.bm25_files.len());
    if h.dim > 0 {
        let rows = n.checked_mul(h.dim)?;
        out.extend([rows.checked_mul(4)?, n.checked_mul(4)?, rows]);
    }
    out.extend([n.checked_mul(16)?, n.checked_add(1)?.checked_mul(8)?, h.chunk_data_len]);
    out.extend(h.bm25_files.iter().map(|(_, l)| *l));
    Some(out)
}

/// Bytes of the sections after the header, padding included.
fn body_len(h: &Header) -> Option<usize> {
    section_lens(h)?.into_iter().try_fold(0usize, |a, l| a.checked_add(padded(l)?))
}

fn encode(stamp: &IndexStamp, index: &GuildIndex) -> Result<Vec<u8>> {
    let (chunks, bm25, dense) = index.parts();
    let files = bm25.files()?;
    let header = Header {
        stamp: stamp.clone(),
        chunks: chunks.len(),
        dim: dense.map_or(0, DenseIndex::dim),
        bm25_files: files.iter().map(|(n, b)| (n.clone(), b.len())).collect(),
        chunk_data_len: chunks.data.len(),
    };
    let mut header_bytes =
        serde_json::to_vec(&header).map_err(|source| KbError::Json { what: "index header".into(), source })?;
    // Trailing spaces are still valid JSON; they align the first section.
    let body_start = padded(16 + header_bytes.len()).ok_or_else(|| KbError::Data("index header too long".into()))?;
    header_bytes.resize(body_start - 16, b' ');
    let header_len = u32::try_from(header_bytes.len()).map_err(|_| KbError::Data("index header too long".into()))?;
    let body = body_len(&header).ok_or_else(|| KbError::Data("index too large".into()))?;
    let mut out = Vec::with_capacity(body_start + body + 8);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT.to_le_bytes());
    out.extend_from_slice(&header_len.to_le_bytes());
    out.extend_from_slice(&header_bytes);
    let pad = |out: &mut Vec<u8>| out.resize(out.len().next_multiple_of(ALIGN), 0);
    if let Some(d) = dense {
        let (data, codes, scales) = d.parts();
        for x in data {
            out.extend_from_slice(&x.to_le_bytes());
        }
        pad(&mut out);
        for x in scales {
            out.extend_from_slice(&x.to_le_bytes());
        }
        pad(&mut out);
        out.extend(codes.iter().map(|c| *c as u8));
        pad(&mut out);
    }
    for (c, d) in &chunks.ids {
        out.extend_from_slice(&c.to_le_bytes());
        out.extend_from_slice(&d.to_le_bytes());
    }
    pad(&mut out);
    for o in &chunks.offsets {
        out.extend_from_slice(&o.to_le_bytes());
    }
    pad(&mut out);
    out.extend_from_slice(&chunks.data);
    pad(&mut out);
    for (_, b) in &files {
        out.extend_from_slice(b);
        pad(&mut out);
    }
    debug_assert_eq!(out.len(), body_start + body);
    let sum = checksum(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    Ok(out)
}

/// Splits `bytes` into consecutive padded sections.
struct Sections(OwnedBytes);

impl Sections {
    /// The next section, `n` bytes long (its padding is skipped).
    fn take(&mut self, n: usize) -> Result<OwnedBytes> {
        let truncated = || KbError::Index("truncated".into());
        let step = padded(n).ok_or_else(truncated)?;
        if step > self.0.len() {
            return Err(truncated());
        }
        let section = self.0.slice(0..n);
        self.0.advance(step);
        Ok(section)
    }
}

fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// Checks `bytes` (the whole file) against its checksum, then assembles the index over them.
fn decode(header: &Header, bytes: OwnedBytes, body_start: usize) -> Result<GuildIndex> {
    let expected = body_len(header).and_then(|b| b.checked_add(body_start)?.checked_add(8));
    if expected != Some(bytes.len()) {
        return Err(KbError::Index(format!("{} bytes, header describes {expected:?}", bytes.len())));
    }
    let content_len = bytes.len() - 8;
    let mut stored = [0u8; 8];
    stored.copy_from_slice(&bytes[content_len..]);
    if checksum(&bytes[..content_len]) != u64::from_le_bytes(stored) {
        return Err(KbError::Index("checksum mismatch".into()));
    }
    let mut s = Sections(bytes.slice(body_start..content_len));
    let n = header.chunks;
    let dense = if header.dim == 0 {
        None
    } else {
        let rows = n * header.dim;
        let data = s.take(rows * 4)?;
        let scales = f32s(&s.take(n * 4)?);
        let codes = s.take(rows)?;
        Some(DenseIndex::from_shared_parts(header.dim, data, codes, scales)?)
    };
    let ids = s
        .take(n * 16)?
        .chunks_exact(16)
        .map(|c| {
            let (a, b) = c.split_at(8);
            let mut x = [0u8; 8];
            let mut y = [0u8; 8];
            x.copy_from_slice(a);
            y.copy_from_slice(b);
            (i64::from_le_bytes(x), i64::from_le_bytes(y))
        })
        .collect();
    let offsets = s
        .take((n + 1) * 8)?
        .chunks_exact(8)
        .map(|c| {
            let mut x = [0u8; 8];
            x.copy_from_slice(c);
            u64::from_le_bytes(x)
        })
        .collect();
    let data = s.take(header.chunk_data_len)?;
    let table = ChunkTable { ids, offsets, data };
    let mut files = Vec::with_capacity(header.bm25_files.len());
    for (name, len) in &header.bm25_files {
        files.push((name.clone(), s.take(*len)?));
    }
    let bm25 = Bm25Index::from_shared_files(files, n)?;
    GuildIndex::from_parts(table, bm25, dense)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fusion::FusionConfig;
    use crate::retriever::IndexedChunk;

    fn chunks(with_vectors: bool) -> Vec<IndexedChunk> {
        let texts = ["Refunds are issued within 14 days.", "Run the MSI installer.", "Support hours: 9 to 5."];
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| IndexedChunk {
                chunk_id: 10 + i as i64,
                document_id: 100 + i as i64,
                document_key: format!("doc{i}.md"),
                title: format!("Doc é {i}"),
                heading_path: vec!["Top".into(), format!("Section {i}")],
                text: (*t).to_string(),
                embedding: with_vectors.then(|| {
                    let mut v = vec![0.0f32; 8];
                    v[i] = 1.0;
                    v
                }),
            })
            .collect()
    }

    fn stamp(version: i64) -> IndexStamp {
        IndexStamp { guild_id: 7, version, model: Some("m".into()) }
    }

    #[test]
    fn round_trip_answers_like_the_original() {
        let dir = tempfile::tempdir().unwrap();
        let idx_dir = IndexDir::new(dir.path().join("kb-index"));
        for with_vectors in [true, false] {
            let index = GuildIndex::build(chunks(with_vectors)).unwrap();
            idx_dir.save(&stamp(3), &index).unwrap();
            let back = idx_dir.load(&stamp(3)).unwrap().unwrap();
            assert_eq!(back.len(), 3);
            assert_eq!(back.dense_dim(), index.dense_dim());
            let q: Vec<f32> = (0..8).map(|i| if i == 1 { 1.0 } else { 0.0 }).collect();
            let v = with_vectors.then_some(q.as_slice());
            for query in ["refunds", "installer hours", "nothing matches zzz"] {
                let f = FusionConfig::default();
                assert_eq!(back.search(&f, query, v, 3).unwrap(), index.search(&f, query, v, 3).unwrap());
            }
        }
        // No temporary files are left behind.
        let names: Vec<String> = std::fs::read_dir(idx_dir.root())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["guild-7.kbi".to_string()]);
    }

    #[test]
    fn stale_missing_and_corrupt_files_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let idx_dir = IndexDir::new(dir.path());
        assert_eq!(idx_dir.load(&stamp(1)).unwrap().err(), Some(LoadMiss::Missing));
        let index = GuildIndex::build(chunks(true)).unwrap();
        idx_dir.save(&stamp(1), &index).unwrap();
        assert_eq!(idx_dir.load(&stamp(2)).unwrap().err(), Some(LoadMiss::Stale(stamp(1))));
        let other_model = IndexStamp { model: None, ..stamp(1) };
        assert!(matches!(idx_dir.load(&other_model).unwrap(), Err(LoadMiss::Stale(_))));

        let path = idx_dir.path(7);
        let good = std::fs::read(&path).unwrap();
        // Every single flipped byte past the header, and every truncation, is caught.
        let body_start = 16 + u32::from_le_bytes([good[12], good[13], good[14], good[15]]) as usize;
        for at in [body_start, body_start + 100, good.len() / 2, good.len() - 20, good.len() - 1] {
            let mut bad = good.clone();
            bad[at] ^= 0x40;
            std::fs::write(&path, &bad).unwrap();
            assert!(idx_dir.load(&stamp(1)).is_err(), "flip at {at}");
        }
        for len in [0, 5, 16, body_start, good.len() - 1] {
            std::fs::write(&path, &good[..len]).unwrap();
            assert!(idx_dir.load(&stamp(1)).is_err(), "truncated to {len}");
        }
        std::fs::write(&path, &good).unwrap();
        assert!(idx_dir.load(&stamp(1)).unwrap().is_ok());
        idx_dir.remove(7).unwrap();
        assert_eq!(idx_dir.load(&stamp(1)).unwrap().err(), Some(LoadMiss::Missing));
        idx_dir.remove(7).unwrap();
    }

    #[test]
    fn a_failed_write_leaves_the_previous_file() {
        let dir = tempfile::tempdir().unwrap();
        let idx_dir = IndexDir::new(dir.path());
        let v1 = GuildIndex::build(chunks(true)).unwrap();
        idx_dir.save(&stamp(1), &v1).unwrap();
        let v2 = encode(&stamp(2), &GuildIndex::build(chunks(false)).unwrap()).unwrap();
        // The writer dies half-way (disk full, process killed before the rename).
        let err = idx_dir.save_bytes(&stamp(2), &v2, |f, b| {
            f.write_all(&b[..b.len() / 2])?;
            Err(std::io::Error::other("injected crash"))
        });
        assert!(err.is_err());
        let back = idx_dir.load(&stamp(1)).unwrap().unwrap();
        assert_eq!(back.dense_dim(), Some(8));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "temporary file removed");
        // A completed write replaces it.
        assert_eq!(idx_dir.save_bytes(&stamp(2), &v2, |f, b| f.write_all(b)).unwrap(), Saved::Written);
        assert_eq!(idx_dir.load(&stamp(2)).unwrap().unwrap().dense_dim(), None);
    }

    #[test]
    fn files_of_another_format_are_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let idx_dir = IndexDir::new(dir.path());
        idx_dir.save(&stamp(1), &GuildIndex::build(chunks(true)).unwrap()).unwrap();
        let path = idx_dir.path(7);
        let mut old = std::fs::read(&path).unwrap();
        old[8..12].copy_from_slice(&1u32.to_le_bytes());
        std::fs::write(&path, &old).unwrap();
        assert_eq!(idx_dir.load(&stamp(1)).unwrap().err(), Some(LoadMiss::Format(1)));
        // Its stamp is not trusted either: any writer replaces it.
        assert_eq!(idx_dir.stamp_on_disk(7), None);
        assert_eq!(idx_dir.save(&stamp(0), &GuildIndex::build(chunks(false)).unwrap()).unwrap(), Saved::Written);
        assert_eq!(idx_dir.load(&stamp(0)).unwrap().unwrap().dense_dim(), None);
    }

    #[test]
    fn sections_are_aligned_and_a_loaded_index_saves_again() {
        let dir = tempfile::tempdir().unwrap();
        let idx_dir = IndexDir::new(dir.path());
        let index = GuildIndex::build(chunks(true)).unwrap();
        let bytes = encode(&stamp(1), &index).unwrap();
        let header_len = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]) as usize;
        assert_eq!((16 + header_len) % ALIGN, 0);
        assert_eq!((bytes.len() - 8) % ALIGN, 0);
        idx_dir.save(&stamp(1), &index).unwrap();
        let loaded = idx_dir.load(&stamp(1)).unwrap().unwrap();
        let dense = loaded.parts().2.unwrap();
        assert_eq!(dense.parts(), index.parts().2.unwrap().parts());
        if cfg!(target_endian = "little") {
            // The f32 rows and codes are used in place, not copied: only the scales are owned.
            assert_eq!(dense.heap_bytes(), 3 * 4);
        }
        // Encoding an index read from disk gives the same file.
        assert_eq!(encode(&stamp(1), &loaded).unwrap(), bytes);
    }

    #[test]
    fn an_older_version_never_replaces_a_newer_file() {
        let dir = tempfile::tempdir().unwrap();
        let idx_dir = IndexDir::new(dir.path());
        let v5 = GuildIndex::build(chunks(true)).unwrap();
        let v4 = GuildIndex::build(chunks(false)).unwrap();
        assert_eq!(idx_dir.save(&stamp(5), &v5).unwrap(), Saved::Written);
        // The writer of version 4 finishes last: the file keeps version 5.
        assert_eq!(idx_dir.save(&stamp(4), &v4).unwrap(), Saved::KeptNewer(stamp(5)));
        assert!(idx_dir.load(&stamp(5)).unwrap().is_ok());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "its temporary file is removed");
        // The same or a newer version replaces it.
        assert_eq!(idx_dir.save(&stamp(5), &v4).unwrap(), Saved::Written);
        assert_eq!(idx_dir.load(&stamp(5)).unwrap().unwrap().dense_dim(), None);
        assert_eq!(idx_dir.save(&stamp(6), &v5).unwrap(), Saved::Written);

        // Racing writers of many versions, in any order: the newest one's file is left.
        let index = std::sync::Arc::new(v5);
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let (idx_dir, index) = (idx_dir.clone(), index.clone());
                std::thread::spawn(move || {
                    for i in 0..5 {
                        let version = 10 + ((t * 7 + i * 3) % 40) as i64;
                        idx_dir.save(&stamp(version), &index).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let newest = (0..8).flat_map(|t| (0..5).map(move |i| 10 + ((t * 7 + i * 3) % 40) as i64)).max().unwrap();
        assert_eq!(idx_dir.stamp_on_disk(7), Some(stamp(newest)));
        assert!(idx_dir.load(&stamp(newest)).unwrap().is_ok());
    }

    #[test]
    fn checksum_sees_every_byte() {
        let base: Vec<u8> = (0..100u8).collect();
        let h = checksum(&base);
        for i in 0..base.len() {
            let mut b = base.clone();
            b[i] ^= 1;
            assert_ne!(checksum(&b), h, "byte {i}");
        }
        assert_ne!(checksum(&base[..99]), h);
        assert_ne!(checksum(&[]), checksum(&[0]));
    }
}
