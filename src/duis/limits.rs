//! The bounds a request must stay within before the parser gives up on it.

/// Bounds on everything in a request a peer controls. When one is hit the parser stops at once
/// and returns the matching [`ParseError`](super::ParseError) (the sender gets E42).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Whole document, checked before any parsing.
    pub max_bytes: usize,
    /// Nesting depth; the root element is depth 1.
    pub max_depth: usize,
    /// Start and empty-element tags in the whole document.
    pub max_elements: usize,
    /// Attributes on one element, namespace declarations included.
    pub max_attributes: usize,
    /// One text node or CDATA section (raw bytes), and the collected text of one header field.
    pub max_text_bytes: usize,
    /// Namespace declarations in the whole document (a DUIS request needs three or four).
    pub max_namespaces: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 1024 * 1024,
            max_depth: 64,
            max_elements: 20_000,
            max_attributes: 32,
            max_text_bytes: 512 * 1024,
            max_namespaces: 64,
        }
    }
}
