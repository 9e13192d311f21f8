//! The leaves of a non-device request's body element, read once: each leaf element's path of
//! local names below the body element (`PartialAddress/PostCode`) and its text. Bounded: a body
//! deeper than [`MAX_DEPTH`] or with more than [`MAX_FIELDS`] leaves is refused as it is read.
//! The service readers take the leaves they know by path, and [`Fields::finish`] refuses any
//! left over (an unknown or repeated element).

use quick_xml::events::Event;
use quick_xml::Reader;

use super::BodyError;

/// The deepest element a body may hold, the body element being depth 1.
pub const MAX_DEPTH: usize = 4;
/// The most leaf elements a body may hold (the largest, 8.14.2, has fifteen).
pub const MAX_FIELDS: usize = 32;

/// The leaves of one body element, in document order.
#[derive(Debug, Default)]
pub struct Fields {
    leaves: Vec<(String, String)>,
}

/// An element being read: its local name, whether it has child elements, its text so far.
struct Open {
    name: String,
    parent: bool,
    text: String,
}

impl Fields {
    /// Reads the body element `body` (its bytes, start tag to end tag, as the request parser
    /// located them: already bounded and free of DOCTYPEs and entities), which must be called
    /// `root`.
    pub fn read(body: &[u8], root: &str) -> Result<Self, BodyError> {
        let mut reader = Reader::from_reader(body);
        let mut stack: Vec<Open> = Vec::new();
        let mut fields = Fields::default();
        loop {
            match reader.read_event() {
                Ok(Event::Start(e)) => {
                    let name = local(e.local_name().as_ref())?;
                    fields.open(&mut stack, name, root)?;
                }
                Ok(Event::Empty(e)) => {
                    let name = local(e.local_name().as_ref())?;
                    fields.open(&mut stack, name, root)?;
                    fields.close(&mut stack)?;
                }
                Ok(Event::Text(t)) => {
                    let open = stack.last_mut().ok_or(BodyError::Structure)?;
                    let part = t.unescape().map_err(|_| BodyError::Structure)?;
                    open.text.push_str(&part);
                }
                Ok(Event::End(_)) => {
                    fields.close(&mut stack)?;
                    if stack.is_empty() {
                        return Ok(fields);
                    }
                }
                Ok(Event::Eof) | Err(_) => return Err(BodyError::Structure),
                Ok(_) => {}
            }
        }
    }

    fn open(&mut self, stack: &mut Vec<Open>, name: String, root: &str) -> Result<(), BodyError> {
        if stack.is_empty() && name != root {
            return Err(BodyError::Structure);
        }
        if stack.len() >= MAX_DEPTH {
            return Err(BodyError::Structure);
        }
        if let Some(parent) = stack.last_mut() {
            parent.parent = true;
        }
        stack.push(Open {
            name,
            parent: false,
            text: String::new(),
        });
        Ok(())
    }

    fn close(&mut self, stack: &mut Vec<Open>) -> Result<(), BodyError> {
        let open = stack.pop().ok_or(BodyError::Structure)?;
        let text = open.text.trim();
        match (open.parent, stack.is_empty()) {
            // Mixed content: text beside child elements.
            (true, _) if !text.is_empty() => Err(BodyError::Structure),
            (true, _) | (false, true) => Ok(()),
            (false, false) => {
                if self.leaves.len() == MAX_FIELDS {
                    return Err(BodyError::Structure);
                }
                // The path below the body element: the open elements after the root.
                let mut path = String::new();
                for o in stack.iter().skip(1) {
                    path.push_str(&o.name);
                    path.push('/');
                }
                path.push_str(&open.name);
                self.leaves.push((path, text.to_owned()));
                Ok(())
            }
        }
    }

    /// The text of the leaf at `path`, taken (a second leaf at the same path stays, for
    /// [`Self::finish`] to refuse).
    pub fn take(&mut self, path: &str) -> Option<String> {
        let i = self.leaves.iter().position(|(p, _)| p == path)?;
        Some(self.leaves.remove(i).1)
    }

    /// The leaf at `path`, which the schema requires.
    pub fn required(&mut self, path: &'static str) -> Result<String, BodyError> {
        self.take(path).ok_or(BodyError::Missing(path))
    }

    /// The leaf at `path` parsed with `FromStr`; `Invalid(path)` when it does not parse.
    pub fn parsed<T: std::str::FromStr>(&mut self, path: &'static str) -> Result<T, BodyError> {
        self.required(path)?
            .parse()
            .map_err(|_| BodyError::Invalid(path))
    }

    /// As [`Self::parsed`], for an optional leaf.
    pub fn optional<T: std::str::FromStr>(
        &mut self,
        path: &'static str,
    ) -> Result<Option<T>, BodyError> {
        self.take(path)
            .map(|t| t.parse().map_err(|_| BodyError::Invalid(path)))
            .transpose()
    }

    /// The leaf at `path` if present, as text of at most `max` characters.
    pub fn text(&mut self, path: &'static str, max: usize) -> Result<Option<String>, BodyError> {
        match self.take(path) {
            Some(t) if t.chars().count() > max => Err(BodyError::Invalid(path)),
            other => Ok(other),
        }
    }

    /// Whether any leaf's path starts with `prefix` (which of a choice's branches is present).
    pub fn has(&self, prefix: &str) -> bool {
        self.leaves.iter().any(|(p, _)| {
            p == prefix || (p.starts_with(prefix) && p.as_bytes().get(prefix.len()) == Some(&b'/'))
        })
    }

    /// Refuses the body if a leaf was not taken: an element the schema does not have there, or
    /// one given twice.
    pub fn finish(self) -> Result<(), BodyError> {
        match self.leaves.into_iter().next() {
            None => Ok(()),
            Some(_) => Err(BodyError::Unexpected),
        }
    }
}

fn local(name: &[u8]) -> Result<String, BodyError> {
    std::str::from_utf8(name)
        .map(str::to_owned)
        .map_err(|_| BodyError::Structure)
}
