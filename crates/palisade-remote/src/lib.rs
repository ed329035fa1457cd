//! Remote content in mail, on the server's side: the image proxy that loads a message's
//! remote images on the reader's behalf (so the sender never sees the reader's address or
//! cookies), its signed links, the address rules that keep it out of our own network, and
//! the list of hosts known to track readers.

pub mod address;
pub mod fetch;
pub mod link;
pub mod trackers;

pub use address::{Refusal, classify, permitted};
pub use fetch::{FetchError, FetchPolicy, Image, ImageFetcher};
pub use link::{LinkError, LinkSigner, expiry, link_query, proxiable};
pub use trackers::TrackerHosts;
