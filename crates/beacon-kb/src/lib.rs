//! stub
pub mod bm25;
pub mod chunk;
pub mod dense;
pub mod embed;
pub mod error;
pub mod eval;
pub mod fusion;
pub mod ingest;
pub mod retriever;
pub mod source;
pub mod store;
