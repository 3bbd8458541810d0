//! Gateway transport compression (`compress=zlib-stream` / `compress=zstd-stream`).

use flate2::{Compress, Compression, FlushCompress};

/// One connection's compressor: a single stream shared by all its messages.
pub enum Encoder {
    /// Plain text frames.
    None,
    /// One zlib stream; every message ends with a sync flush (`00 00 ff ff`).
    Zlib(Box<Compress>),
    /// One zstd stream; every message ends with a flush.
    Zstd(Box<zstd_safe::CCtx<'static>>),
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Encoder::None => "Encoder::None",
            Encoder::Zlib(_) => "Encoder::Zlib",
            Encoder::Zstd(_) => "Encoder::Zstd",
        })
    }
}

impl Encoder {
    /// Pick the encoder from the `compress` query parameter.
    pub fn from_query(compress: Option<&str>) -> Self {
        match compress {
            Some("zlib-stream") => Encoder::Zlib(Box::new(Compress::new(Compression::default(), true))),
            Some("zstd-stream") => Encoder::Zstd(Box::new(zstd_safe::CCtx::create())),
            _ => Encoder::None,
        }
    }

    /// `None` means send as text.
    pub fn encode(&mut self, text: &str) -> Result<Option<Vec<u8>>, String> {
        let input = text.as_bytes();
        match self {
            Encoder::None => Ok(None),
            Encoder::Zlib(c) => {
                let mut out = Vec::with_capacity(input.len() / 2 + 64);
                let start = c.total_in();
                loop {
                    if out.capacity() - out.len() < 64 {
                        out.reserve(out.capacity().max(256));
                    }
                    let consumed = (c.total_in() - start) as usize;
                    c.compress_vec(&input[consumed..], &mut out, FlushCompress::Sync).map_err(|e| e.to_string())?;
                    let consumed = (c.total_in() - start) as usize;
                    // The flush is complete once all input is consumed and output space remains.
                    if consumed == input.len() && out.len() < out.capacity() {
                        break;
                    }
                }
                Ok(Some(out))
            }
            Encoder::Zstd(ctx) => {
                let mut result = Vec::new();
                let mut buf = vec![0u8; zstd_safe::CCtx::out_size()];
                let mut inb = zstd_safe::InBuffer::around(input);
                loop {
                    let mut outb = zstd_safe::OutBuffer::around(&mut buf[..]);
                    let remaining = ctx
                        .compress_stream2(&mut outb, &mut inb, zstd_safe::zstd_sys::ZSTD_EndDirective::ZSTD_e_flush)
                        .map_err(|code| zstd_safe::get_error_name(code).to_owned())?;
                    result.extend_from_slice(outb.as_slice());
                    if remaining == 0 && inb.pos == input.len() {
                        break;
                    }
                }
                Ok(Some(result))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zlib_frames_end_with_sync_marker_and_decode() {
        let mut e = Encoder::from_query(Some("zlib-stream"));
        let mut d = flate2::Decompress::new(true);
        for msg in ["{\"op\":10}", "{\"op\":11,\"d\":null}"] {
            let frame = e.encode(msg).unwrap().unwrap();
            assert!(frame.ends_with(&[0, 0, 0xff, 0xff]));
            let mut out = Vec::with_capacity(1024);
            d.decompress_vec(&frame, &mut out, flate2::FlushDecompress::Sync).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), msg);
        }
    }

    #[test]
    fn zstd_frames_decode_in_sequence() {
        let mut e = Encoder::from_query(Some("zstd-stream"));
        let mut d = zstd_safe::DCtx::create();
        for msg in ["{\"op\":10}", "{\"op\":0,\"t\":\"READY\"}"] {
            let frame = e.encode(msg).unwrap().unwrap();
            let mut buf = vec![0u8; 4096];
            let mut inb = zstd_safe::InBuffer::around(&frame);
            let mut outb = zstd_safe::OutBuffer::around(&mut buf[..]);
            d.decompress_stream(&mut outb, &mut inb).unwrap();
            assert_eq!(std::str::from_utf8(outb.as_slice()).unwrap(), msg);
        }
    }
}
