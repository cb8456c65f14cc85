use async_trait::async_trait;

use crate::domain::PortError;
use crate::domain::page_text::Fragment;
use crate::image::{PreparedImage, ReaderNeeds, Rotation};

/// The writing system of a page, which decides the reader's language model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    Latin,
    Hangul,
}

/// How a page lies, as told from its content.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PageLayout {
    /// The clockwise turn that makes the text upright.
    pub rotation: Rotation,
    pub script: Script,
    /// The detector's confidence in the rotation; above ~2 is trustworthy.
    pub confidence: f32,
}

/// A reader's raw answer for one page.
#[derive(Debug, Clone)]
pub struct Reading {
    /// Fragments in the reader's order, in prepared-image coordinates.
    pub fragments: Vec<Fragment>,
    /// The reader's own output, kept for inspection.
    pub raw: String,
}

/// Finds the text on a page image.
#[async_trait]
pub trait TextReader: Send + Sync {
    fn engine(&self) -> &'static str;

    /// The resolution the reader works best at.
    fn needs(&self) -> ReaderNeeds;

    /// Tells how the page lies from its content. `Ok(None)` when the reader
    /// cannot tell (too little text); the caller then trusts the EXIF tag.
    async fn detect_layout(&self, page: &PreparedImage) -> Result<Option<PageLayout>, PortError>;

    async fn read(&self, page: &PreparedImage, script: Script) -> Result<Reading, PortError>;
}
