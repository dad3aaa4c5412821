//! strongroom-graph: Microsoft identity platform + Microsoft Graph client.
//!
//! Not built yet (issue 5): an empty crate holding its place in the workspace. It will know
//! nothing of storage.
