//! m365-emulator: a local emulator of the Microsoft identity platform and Microsoft Graph.
//!
//! Not built yet (issue 3): an empty crate holding its place in the workspace.
