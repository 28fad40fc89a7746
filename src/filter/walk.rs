//! Matching, once per event (the hot path): one streaming pass of `serde_json::Deserializer`
//! over the payload that follows the path trie and captures only the values at the filter's
//! paths.

use super::pred::{Captured, Num};
use super::trie::PathTrie;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

/// Deserializes the payload value at trie node `node`, capturing what the
/// filter reads and skipping the rest.
pub(super) struct Walk<'a, 'de> {
    pub(super) trie: &'a PathTrie,
    pub(super) node: usize,
    pub(super) captured: &'a mut [Option<Captured<'de>>],
}

impl<'de> Walk<'_, 'de> {
    #[inline]
    fn capture(self, value: Captured<'de>) {
        let slot = self.trie.node(self.node).and_then(|n| n.slot);
        if let Some(slot) = slot.and_then(|s| self.captured.get_mut(s)) {
            *slot = Some(value);
        }
    }

    /// Handles an array or object at this node: `Ok(true)` when it was
    /// consumed whole here, `Ok(false)` when its children must be walked.
    fn compound_captured<D>(&mut self, deserializer: D) -> Result<bool, D::Error>
    where
        D: Deserializer<'de>,
    {
        let Some(node) = self.trie.node(self.node) else {
            IgnoredAny::deserialize(deserializer)?;
            return Ok(true);
        };
        let Some(slot) = node.slot else {
            return Ok(false);
        };
        if node.keep_compound {
            let value = Value::deserialize(deserializer)?;
            self.trie.fill_from_value(self.node, &value, self.captured);
            if let Some(slot) = self.captured.get_mut(slot) {
                *slot = Some(Captured::Compound(Box::new(value)));
            }
            return Ok(true);
        }
        if let Some(slot) = self.captured.get_mut(slot) {
            *slot = Some(Captured::Opaque);
        }
        if node.children.is_empty() {
            IgnoredAny::deserialize(deserializer)?;
            return Ok(true);
        }
        Ok(false)
    }

    fn clear_subtree(&mut self, node: usize) {
        if let Some(n) = self.trie.node(node) {
            if let Some(slots) = self.captured.get_mut(n.first_slot..n.end_slot) {
                for slot in slots {
                    *slot = None;
                }
            }
        }
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_, 'de> {
    type Value = ();

    #[inline]
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.capture(Captured::Null);
        Ok(())
    }

    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.capture(Captured::Bool(v));
        Ok(())
    }

    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.capture(Captured::Num(Num::Int(i128::from(v))));
        Ok(())
    }

    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.capture(Captured::Num(Num::Int(i128::from(v))));
        Ok(())
    }

    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        self.capture(Captured::Num(Num::Float(v)));
        Ok(())
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<(), E> {
        self.capture(Captured::Str(Cow::Borrowed(v)));
        Ok(())
    }

    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.capture(Captured::Str(Cow::Owned(v.to_owned())));
        Ok(())
    }

    fn visit_string<E>(self, v: String) -> Result<(), E> {
        self.capture(Captured::Str(Cow::Owned(v)));
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        if self.compound_captured(MapAccessDeserializer::new(&mut map))? {
            return Ok(());
        }
        let trie = self.trie;
        while let Some(child) = map.next_key_seed(KeyLookup { trie, node: self.node })? {
            match child {
                Some(child) => {
                    // A duplicate key replaces what an earlier one captured.
                    self.clear_subtree(child);
                    map.next_value_seed(Walk { trie, node: child, captured: &mut *self.captured })?;
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        if self.compound_captured(SeqAccessDeserializer::new(&mut seq))? {
            return Ok(());
        }
        let trie = self.trie;
        let children = match trie.node(self.node) {
            Some(node) => &node.children[..],
            None => &[],
        };
        let mut index = 0;
        loop {
            let child = children.iter().find(|c| c.index == Some(index));
            let more = match child {
                Some(child) => {
                    seq.next_element_seed(Walk { trie, node: child.node, captured: &mut *self.captured })?.is_some()
                }
                None => seq.next_element::<IgnoredAny>()?.is_some(),
            };
            if !more {
                return Ok(());
            }
            index += 1;
        }
    }
}

/// Deserializes an object key into the trie child it names, if any. The key
/// is only compared, never copied: serde_json hands over a `&str` borrowed
/// from the payload, or from its scratch buffer when the key had escapes.
struct KeyLookup<'a> {
    trie: &'a PathTrie,
    node: usize,
}

impl<'de> DeserializeSeed<'de> for KeyLookup<'_> {
    type Value = Option<usize>;

    #[inline]
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<usize>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyLookup<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    #[inline]
    fn visit_str<E>(self, key: &str) -> Result<Option<usize>, E> {
        Ok(self.trie.node(self.node).and_then(|node| node.children.iter().find(|c| &*c.key == key).map(|c| c.node)))
    }
}
