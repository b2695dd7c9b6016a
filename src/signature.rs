//! What the resolver, the kernel lowering and the JIT know of builtins:
//! names, signatures, documentation and groups, never how they run. The
//! interpreter's table (`eval::builtins`) declares each builtin with its
//! implementation and builds a `Builtins` from it; an embedding program adds
//! its host functions to a session's copy, so `check` knows their arity too.
//!
//! A signature is written like a parameter list: `x, axis=none` (defaults are
//! literals), `*shape` collects extra positional arguments, parameters after it
//! are keyword-only, and `**metrics` collects extra named arguments.

use std::collections::HashMap;

use crate::format::float_repr;

/// A default value in a signature.
#[derive(Clone, Debug, PartialEq)]
pub enum Lit {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl Lit {
    fn parse(s: &str) -> Result<Lit, String> {
        Ok(match s {
            "none" => Lit::None,
            "true" => Lit::Bool(true),
            "false" => Lit::Bool(false),
            _ if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') => {
                Lit::Str(s[1..s.len() - 1].to_string())
            }
            _ => match s.parse::<i64>() {
                Ok(i) => Lit::Int(i),
                Err(_) => Lit::Float(
                    s.parse::<f64>()
                        .map_err(|_| format!("`{s}` is not a literal"))?,
                ),
            },
        })
    }

    /// As flx writes it.
    pub fn repr(&self) -> String {
        match self {
            Lit::None => "none".into(),
            Lit::Bool(b) => b.to_string(),
            Lit::Int(i) => i.to_string(),
            Lit::Float(f) => float_repr(*f),
            Lit::Str(s) => format!("\"{s}\""),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Param {
    pub name: String,
    pub default: Option<Lit>,
}

#[derive(Clone, Debug)]
pub struct Signature {
    pub name: String,
    pub positional: Vec<Param>,
    pub variadic: Option<String>,
    pub keyword: Vec<Param>,
    pub kwargs: Option<String>,
}

impl Signature {
    /// Parse a parameter list such as `x, axis=none` for the builtin `name`.
    pub fn parse(name: &str, sig: &str) -> Result<Signature, String> {
        let mut s = Signature {
            name: name.to_string(),
            positional: Vec::new(),
            variadic: None,
            keyword: Vec::new(),
            kwargs: None,
        };
        // Split on commas outside quotes (a default may be `","`).
        let mut parts = Vec::new();
        let (mut start, mut quoted) = (0, false);
        for (i, c) in sig.char_indices() {
            match c {
                '"' => quoted = !quoted,
                ',' if !quoted => {
                    parts.push(&sig[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        parts.push(&sig[start..]);
        for part in parts.into_iter().map(str::trim).filter(|p| !p.is_empty()) {
            if let Some(rest) = part.strip_prefix("**") {
                s.kwargs = Some(rest.to_string());
            } else if let Some(rest) = part.strip_prefix('*') {
                s.variadic = Some(rest.to_string());
            } else {
                let (n, d) = match part.split_once('=') {
                    Some((n, d)) => (n.trim(), Some(Lit::parse(d.trim())?)),
                    None => (part, None),
                };
                if n.is_empty() || !n.chars().all(|c| c.is_alphanumeric() || c == '_') {
                    return Err(format!("`{n}` is not a parameter name"));
                }
                let p = Param {
                    name: n.to_string(),
                    default: d,
                };
                if s.variadic.is_some() {
                    s.keyword.push(p);
                } else {
                    s.positional.push(p);
                }
            }
        }
        Ok(s)
    }

    pub fn accepts_named(&self, name: &str) -> bool {
        self.kwargs.is_some()
            || self
                .positional
                .iter()
                .chain(&self.keyword)
                .any(|p| p.name == name)
    }

    pub fn named_params(&self) -> impl Iterator<Item = &str> {
        self.positional
            .iter()
            .chain(&self.keyword)
            .map(|p| p.name.as_str())
    }

    pub fn display(&self) -> String {
        let show = |p: &Param| match &p.default {
            None => p.name.clone(),
            Some(d) => format!("{}: {}", p.name, d.repr()),
        };
        let mut parts: Vec<String> = self.positional.iter().map(show).collect();
        if let Some(v) = &self.variadic {
            parts.push(format!("{v}..."));
        }
        parts.extend(self.keyword.iter().map(show));
        if let Some(k) = &self.kwargs {
            parts.push(format!("{k}: value..."));
        }
        format!("{}({})", self.name, parts.join(", "))
    }
}

/// One builtin as the checker sees it.
#[derive(Clone, Debug)]
pub struct Entry {
    pub signature: Signature,
    pub doc: String,
}

/// The builtins of a session, by index (`Slot::Builtin`); a name with a dot
/// (`plot.line`) is a member of the group before the dot (`plot`).
#[derive(Clone, Debug, Default)]
pub struct Builtins {
    entries: Vec<Entry>,
    index: HashMap<String, u32>,
}

impl Builtins {
    /// Add a builtin; its index is returned. A name already taken is refused.
    pub fn add(&mut self, name: &str, sig: &str, doc: &str) -> Result<u32, String> {
        if self.index.contains_key(name) {
            return Err(format!("`{name}` is already a builtin"));
        }
        let signature = Signature::parse(name, sig)?;
        let i = self.entries.len() as u32;
        self.entries.push(Entry {
            signature,
            doc: doc.to_string(),
        });
        self.index.insert(name.to_string(), i);
        Ok(i)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn lookup(&self, name: &str) -> Option<u32> {
        self.index.get(name).copied()
    }

    pub fn entry(&self, i: u32) -> &Entry {
        &self.entries[i as usize]
    }

    pub fn name(&self, i: u32) -> &str {
        &self.entry(i).signature.name
    }

    pub fn signature(&self, i: u32) -> &Signature {
        &self.entry(i).signature
    }

    /// Every name, in the order added.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.signature.name.as_str())
    }

    /// The members of a group (`line`, ... of `plot`).
    pub fn members(&self, group: u32) -> Vec<&str> {
        let prefix = format!("{}.", self.name(group));
        self.names()
            .filter_map(|n| n.strip_prefix(prefix.as_str()))
            .collect()
    }

    /// `group.field`, when `group` is a group with that member.
    pub fn member(&self, group: u32, field: &str) -> Option<u32> {
        self.lookup(&format!("{}.{field}", self.name(group)))
    }

    pub fn is_group(&self, i: u32) -> bool {
        !self.members(i).is_empty()
    }

    /// How help shows it: its signature, or its name alone for a group.
    pub fn heading(&self, i: u32) -> String {
        if self.is_group(i) {
            self.name(i).to_string()
        } else {
            self.signature(i).display()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_display_readably() {
        let s = Signature::parse("randn", "*shape, seed=none").unwrap();
        assert_eq!(s.display(), "randn(shape..., seed: none)");
        let c = Signature::parse("load_csv", "path, header=none, delimiter=\",\"").unwrap();
        assert_eq!(
            c.display(),
            "load_csv(path, header: none, delimiter: \",\")"
        );
        assert!(s.accepts_named("seed") && !s.accepts_named("sed"));
        assert!(Signature::parse("f", "x=oops").is_err());
        assert!(Signature::parse("f", "x y").is_err());
    }

    #[test]
    fn groups_are_names_with_a_dot() {
        let mut b = Builtins::default();
        let plot = b.add("plot", "", "Figures.").unwrap();
        b.add("plot.line", "y", "A line.").unwrap();
        assert_eq!(b.members(plot), ["line"]);
        assert_eq!(b.member(plot, "line"), b.lookup("plot.line"));
        assert!(b.add("plot", "", "").is_err());
    }
}
