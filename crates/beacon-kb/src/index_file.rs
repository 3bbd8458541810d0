//! Persisted per-guild index files: one file per guild under the index folder
//! (`<data dir>/kb-index/guild-<id>.kbi`), holding everything a search needs (tantivy's files,
//! the chunk table, the `f32` rows with their int8 codes) so a fresh process answers without
//! rebuilding anything or asking the database for more than the guild's index version.
//!
//! The files are derived data. Each carries a stamp (guild, index version, embedding model); a
//! file whose stamp does not match the database, or that is missing, truncated or corrupt
//! (a checksum covers every byte), is not used and the caller rebuilds it from the database.
//! Writes go to a temporary file that is fsynced and then renamed over the old one (and the
//! folder fsynced), so a crash mid-write leaves the previous file in place.
//!
//! Layout, little-endian: `MAGIC`, format `u32`, header length `u32`, the header (JSON: stamp and
//! section lengths), the sections in header order, then a `u64` checksum of everything before it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use crate::bm25::Bm25Index;
use crate::dense::DenseIndex;
use crate::error::{KbError, Result};
use crate::retriever::{ChunkTable, GuildIndex};

const MAGIC: &[u8; 8] = b"BEACONKB";
/// Bumped whenever the layout changes; a file of another format is rebuilt.
pub const FORMAT: u32 = 1;
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
}

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

    /// Writes `index` as `stamp`'s file, atomically replacing the previous one.
    pub fn save(&self, stamp: &IndexStamp, index: &GuildIndex) -> Result<()> {
        let bytes = encode(stamp, index)?;
        self.save_bytes(stamp.guild_id, &bytes, |f, b| f.write_all(b))
    }

    /// Writes `bytes` through `write` into a temporary file, fsyncs it, renames it over the
    /// guild's file and fsyncs the folder. On any failure the temporary file is removed and the
    /// previous file is untouched.
    fn save_bytes(
        &self,
        guild_id: u64,
        bytes: &[u8],
        write: impl FnOnce(&mut std::fs::File, &[u8]) -> std::io::Result<()>,
    ) -> Result<()> {
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
            std::fs::rename(&tmp, self.path(guild_id))?;
            // The rename is durable once the folder's entry is.
            std::fs::File::open(&self.root)?.sync_all()
        })();
        result.map_err(|e| {
            // Best effort: a temp file left behind is removed by a later write.
            let _ = std::fs::remove_file(&tmp);
            KbError::io(&tmp, e)
        })
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
        let corrupt = |what: &str| KbError::Index(format!("{}: {what}", path.display()));
        // The header first: a stale file is recognised without reading its body.
        let mut head = [0u8; 16];
        f.read_exact(&mut head).map_err(|e| KbError::io(&path, e))?;
        if &head[..8] != MAGIC {
            return Err(corrupt("not an index file"));
        }
        let format = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
        let header_len = u32::from_le_bytes([head[12], head[13], head[14], head[15]]) as usize;
        if format != FORMAT {
            return Err(corrupt(&format!("format {format}, expected {FORMAT}")));
        }
        if header_len > 16 << 20 {
            return Err(corrupt("header too long"));
        }
        let mut header_bytes = vec![0u8; header_len];
        f.read_exact(&mut header_bytes).map_err(|e| KbError::io(&path, e))?;
        let header: Header = serde_json::from_slice(&header_bytes).map_err(|e| corrupt(&format!("header: {e}")))?;
        if &header.stamp != stamp {
            return Ok(Err(LoadMiss::Stale(header.stamp)));
        }
        let mut bytes = Vec::with_capacity(16 + header_len + body_len(&header).unwrap_or(0) + 8);
        bytes.extend_from_slice(&head);
        bytes.extend_from_slice(&header_bytes);
        f.read_to_end(&mut bytes).map_err(|e| KbError::io(&path, e))?;
        decode(&header, &bytes, 16 + header_len).map(Ok).map_err(|e| corrupt(&e.to_string()))
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

/// Bytes of the sections after the header, as the header describes them.
fn body_len(h: &Header) -> Option<usize> {
    let bm25: usize = h.bm25_files.iter().try_fold(0usize, |a, (_, l)| a.checked_add(*l))?;
    let ids = h.chunks.checked_mul(16)?;
    let offsets = h.chunks.checked_add(1)?.checked_mul(8)?;
    let rows = h.chunks.checked_mul(h.dim)?;
    let dense = if h.dim == 0 { 0 } else { rows.checked_mul(5)?.checked_add(h.chunks.checked_mul(4)?)? };
    bm25.checked_add(ids)?.checked_add(offsets)?.checked_add(h.chunk_data_len)?.checked_add(dense)
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
    let header_bytes = serde_json::to_vec(&header).map_err(|e| KbError::Data(e.to_string()))?;
    let header_len = u32::try_from(header_bytes.len()).map_err(|_| KbError::Data("index header too long".into()))?;
    let body = body_len(&header).ok_or_else(|| KbError::Data("index too large".into()))?;
    let mut out = Vec::with_capacity(16 + header_bytes.len() + body + 8);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT.to_le_bytes());
    out.extend_from_slice(&header_len.to_le_bytes());
    out.extend_from_slice(&header_bytes);
    for (_, b) in &files {
        out.extend_from_slice(b);
    }
    for (c, d) in &chunks.ids {
        out.extend_from_slice(&c.to_le_bytes());
        out.extend_from_slice(&d.to_le_bytes());
    }
    for o in &chunks.offsets {
        out.extend_from_slice(&o.to_le_bytes());
    }
    out.extend_from_slice(&chunks.data);
    if let Some(d) = dense {
        let (data, codes, scales) = d.parts();
        for x in data {
            out.extend_from_slice(&x.to_le_bytes());
        }
        out.extend(codes.iter().map(|c| *c as u8));
        for x in scales {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    let sum = checksum(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    Ok(out)
}

/// Splits `bytes` into consecutive sections.
struct Sections<'a>(&'a [u8]);

impl<'a> Sections<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.0.len() {
            return Err(KbError::Index("truncated".into()));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
}

fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn decode(header: &Header, bytes: &[u8], body_start: usize) -> Result<GuildIndex> {
    let expected = body_len(header).and_then(|b| b.checked_add(body_start + 8));
    if expected != Some(bytes.len()) {
        return Err(KbError::Index(format!("{} bytes, header describes {expected:?}", bytes.len())));
    }
    let (content, sum) = bytes.split_at(bytes.len() - 8);
    let mut stored = [0u8; 8];
    stored.copy_from_slice(sum);
    if checksum(content) != u64::from_le_bytes(stored) {
        return Err(KbError::Index("checksum mismatch".into()));
    }
    let mut s = Sections(&content[body_start..]);
    let mut files = Vec::with_capacity(header.bm25_files.len());
    for (name, len) in &header.bm25_files {
        files.push((name.as_str(), s.take(*len)?));
    }
    let n = header.chunks;
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
    let data = s.take(header.chunk_data_len)?.to_vec();
    let table = ChunkTable { ids, offsets, data };
    let dense = if header.dim == 0 {
        None
    } else {
        let rows = n * header.dim;
        let data = f32s(s.take(rows * 4)?);
        let codes = s.take(rows)?.iter().map(|b| *b as i8).collect();
        let scales = f32s(s.take(n * 4)?);
        Some(DenseIndex::from_parts(header.dim, data, codes, scales)?)
    };
    let bm25 = Bm25Index::from_files(&files, n)?;
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
        let err = idx_dir.save_bytes(7, &v2, |f, b| {
            f.write_all(&b[..b.len() / 2])?;
            Err(std::io::Error::other("injected crash"))
        });
        assert!(err.is_err());
        let back = idx_dir.load(&stamp(1)).unwrap().unwrap();
        assert_eq!(back.dense_dim(), Some(8));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "temporary file removed");
        // A completed write replaces it.
        idx_dir.save_bytes(7, &v2, |f, b| f.write_all(b)).unwrap();
        assert_eq!(idx_dir.load(&stamp(2)).unwrap().unwrap().dense_dim(), None);
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
