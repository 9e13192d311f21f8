//! A request body's element as a small tree, for the readers that need its fields (a tariff, a
//! credentials update, a signed pre-command): each element's local name, its `index` attribute,
//! its text and its children, in document order. Namespaces are not read: the request parser has
//! already checked the body is in the DUIS namespace and one element of the variant's type.
//!
//! The input is the body element's bytes as the request parser located them, so every bound the
//! parser keeps (size, depth, element count, text length; no DOCTYPE, no entity other than the
//! predefined ones) already holds; this reader keeps its own bound on depth too, and refuses
//! anything that is not elements, text and comments.

use quick_xml::events::Event;
use quick_xml::Reader;

/// The deepest tree read; deeper input is refused (the request parser's own bound is lower).
const MAX_DEPTH: usize = 64;

/// One element of a request body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Node {
    /// The local name (`DayProfile`).
    pub name: String,
    /// The `index` attribute, when the element has one that is a number.
    pub index: Option<u32>,
    /// The element's own text, whitespace-trimmed (empty for elements with children).
    pub text: String,
    pub children: Vec<Node>,
}

/// Why a body could not be read as a tree, or a field is not what its reader wants.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the body is not a well-formed element")]
    Malformed,
    #[error("the body nests deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("{0} is missing")]
    Missing(&'static str),
    #[error("{0} is not a value its type allows")]
    Invalid(&'static str),
}

impl Node {
    /// Reads the element that is the whole of `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Node, BodyError> {
        let mut reader = Reader::from_reader(bytes);
        let mut open: Vec<Node> = Vec::new();
        loop {
            match reader.read_event().map_err(|_| BodyError::Malformed)? {
                Event::Start(e) => {
                    if open.len() >= MAX_DEPTH {
                        return Err(BodyError::TooDeep);
                    }
                    open.push(start(&e)?);
                }
                Event::Empty(e) => {
                    let node = start(&e)?;
                    match open.last_mut() {
                        Some(parent) => parent.children.push(node),
                        None => return Ok(node),
                    }
                }
                Event::Text(t) => {
                    let text = t.unescape().map_err(|_| BodyError::Malformed)?;
                    if let Some(node) = open.last_mut() {
                        node.text.push_str(&text);
                    } else if !text.trim().is_empty() {
                        return Err(BodyError::Malformed);
                    }
                }
                Event::CData(c) => {
                    let node = open.last_mut().ok_or(BodyError::Malformed)?;
                    let text = std::str::from_utf8(&c).map_err(|_| BodyError::Malformed)?;
                    node.text.push_str(text);
                }
                Event::End(_) => {
                    let mut node = open.pop().ok_or(BodyError::Malformed)?;
                    node.text = node.text.trim().to_owned();
                    match open.last_mut() {
                        Some(parent) => parent.children.push(node),
                        None => return Ok(node),
                    }
                }
                Event::Comment(_) | Event::Decl(_) => {}
                Event::Eof | Event::PI(_) | Event::DocType(_) => return Err(BodyError::Malformed),
            }
        }
    }

    /// The first child called `name`.
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The first child called `name`, or `Missing(name)`.
    pub fn need(&self, name: &'static str) -> Result<&Node, BodyError> {
        self.child(name).ok_or(BodyError::Missing(name))
    }

    /// Every child called `name`, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The text of the child `name`, parsed.
    pub fn value<T: std::str::FromStr>(&self, name: &'static str) -> Result<T, BodyError> {
        self.need(name)?.read(name)
    }

    /// The text of the child `name`, parsed, if there is one.
    pub fn optional<T: std::str::FromStr>(
        &self,
        name: &'static str,
    ) -> Result<Option<T>, BodyError> {
        self.child(name).map(|c| c.read(name)).transpose()
    }

    /// This element's text, parsed; `what` names it in the error.
    pub fn read<T: std::str::FromStr>(&self, what: &'static str) -> Result<T, BodyError> {
        self.text.parse().map_err(|_| BodyError::Invalid(what))
    }

    /// The `index` attribute, or `Missing`.
    pub fn need_index(&self, what: &'static str) -> Result<u32, BodyError> {
        self.index.ok_or(BodyError::Missing(what))
    }
}

fn start(e: &quick_xml::events::BytesStart<'_>) -> Result<Node, BodyError> {
    let name = std::str::from_utf8(e.local_name().into_inner())
        .map_err(|_| BodyError::Malformed)?
        .to_owned();
    let mut index = None;
    for attr in e.attributes() {
        let attr = attr.map_err(|_| BodyError::Malformed)?;
        if attr.key.as_ref() == b"index" {
            let text = std::str::from_utf8(&attr.value).map_err(|_| BodyError::Malformed)?;
            index = Some(
                text.trim()
                    .parse()
                    .map_err(|_| BodyError::Invalid("index"))?,
            );
        }
    }
    Ok(Node {
        name,
        index,
        text: String::new(),
        children: Vec::new(),
    })
}
