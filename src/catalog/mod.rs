//! The library catalog: libraries, series and books with their metadata, locks and external
//! IDs. `fields` is the vocabulary of writable fields and groups; `file` reads and writes the
//! catalog file format that `curator catalog import|export` use.

pub mod fields;
pub mod file;
