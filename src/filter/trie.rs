//! The distinct paths a filter reads, as a trie the streaming walk follows through a payload.

use super::pred::Captured;
use serde_json::Value;

/// The distinct paths a filter reads, as a trie of segments stored in one
/// vector (node 0 is the document root), so building, cloning and dropping
/// it never recurse however long a path is.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct PathTrie {
    nodes: Vec<TrieNode>,
    pub(super) slot_count: usize,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct TrieNode {
    pub(super) children: Vec<Child>,
    /// The slot of the path ending here, if one does.
    pub(super) slot: Option<usize>,
    /// Keep an array or object found here whole (see `Captured::Compound`).
    pub(super) keep_compound: bool,
    /// The slots of this node and all below it: `first_slot..end_slot`.
    /// Cleared when the node is reached again through a duplicate key.
    pub(super) first_slot: usize,
    pub(super) end_slot: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Child {
    pub(super) key: Box<str>,
    /// The array index this segment stands for, if it is one.
    pub(super) index: Option<usize>,
    pub(super) node: usize,
}

impl PathTrie {
    /// Builds the trie of `paths` (distinct, valid, with their
    /// `keep_compound` flags) and returns it with the slot of each path.
    /// Slots are numbered in depth-first order so that every subtree's slots
    /// form one range.
    pub(super) fn build(paths: &[(String, bool)]) -> (PathTrie, Vec<usize>) {
        let mut nodes = vec![TrieNode::default()];
        let mut end_node = Vec::with_capacity(paths.len());
        for (path, keep_compound) in paths {
            let mut node = 0;
            for segment in path.split('.') {
                let found = nodes[node].children.iter().find(|c| &*c.key == segment).map(|c| c.node);
                node = match found {
                    Some(child) => child,
                    None => {
                        let child = nodes.len();
                        nodes.push(TrieNode::default());
                        nodes[node].children.push(Child {
                            key: segment.into(),
                            index: array_index(segment),
                            node: child,
                        });
                        child
                    }
                };
            }
            nodes[node].keep_compound |= *keep_compound;
            end_node.push(node);
        }
        let mut path_at = vec![None; nodes.len()];
        for (path, &node) in end_node.iter().enumerate() {
            path_at[node] = Some(path);
        }

        // Pre-order numbering with an explicit stack; then subtree ends in
        // reverse pre-order, where children come before their parent.
        let mut slot_of_path = vec![0; paths.len()];
        let mut order = Vec::with_capacity(nodes.len());
        let mut stack = vec![0];
        let mut next_slot = 0;
        while let Some(node) = stack.pop() {
            order.push(node);
            nodes[node].first_slot = next_slot;
            if let Some(path) = path_at[node] {
                nodes[node].slot = Some(next_slot);
                slot_of_path[path] = next_slot;
                next_slot += 1;
            }
            stack.extend(nodes[node].children.iter().rev().map(|c| c.node));
        }
        for &node in order.iter().rev() {
            let own_end = nodes[node].first_slot + usize::from(nodes[node].slot.is_some());
            let end = nodes[node].children.iter().map(|c| nodes[c.node].end_slot).fold(own_end, usize::max);
            nodes[node].end_slot = end;
        }
        let trie = PathTrie { nodes, slot_count: next_slot };
        (trie, slot_of_path)
    }

    pub(super) fn node(&self, node: usize) -> Option<&TrieNode> {
        self.nodes.get(node)
    }

    /// Fills the slots below `node` from `value`, a copy of the payload's
    /// value at `node` kept whole. Recursion is bounded by `value`'s depth.
    pub(super) fn fill_from_value(&self, node: usize, value: &Value, captured: &mut [Option<Captured<'_>>]) {
        let Some(trie_node) = self.node(node) else {
            return;
        };
        for child in &trie_node.children {
            let found = match value {
                Value::Object(object) => object.get(&*child.key),
                Value::Array(array) => child.index.and_then(|i| array.get(i)),
                _ => None,
            };
            let (Some(found), Some(child_node)) = (found, self.node(child.node)) else {
                continue;
            };
            if let Some(slot) = child_node.slot.and_then(|s| captured.get_mut(s)) {
                *slot = Some(Captured::of_value(found, child_node.keep_compound));
            }
            self.fill_from_value(child.node, found, captured);
        }
    }
}

/// The array index a path segment stands for: decimal digits without a
/// leading zero, small enough for `usize`.
fn array_index(segment: &str) -> Option<usize> {
    let canonical = segment.bytes().all(|b| b.is_ascii_digit())
        && !segment.is_empty()
        && (segment == "0" || !segment.starts_with('0'));
    if canonical {
        segment.parse().ok()
    } else {
        None
    }
}
