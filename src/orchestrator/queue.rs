//! The priority queue of tasks waiting for the worker (CONTRACT §7): interactive work
//! first, then prune, check, index, forget, scheduled backups and stats; tasks of one
//! priority run in the order they were queued. Pure data structure: no threads, no I/O.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Priorities, lowest first; the worker takes the highest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    Stats = 0,
    ScheduledBackup = 1,
    Forget = 2,
    Index = 3,
    Check = 4,
    Prune = 5,
    Interactive = 6,
}

struct Entry<T> {
    priority: Priority,
    seq: u64,
    item: T,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        self.priority == other.priority && self.seq == other.seq
    }
}
impl<T> Eq for Entry<T> {}
impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Entry<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        // Higher priority first; within a priority, the earlier sequence number first.
        self.priority
            .cmp(&other.priority)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

/// Tasks by priority, first-in first-out within a priority.
pub struct TaskQueue<T> {
    heap: BinaryHeap<Entry<T>>,
    next_seq: u64,
}

impl<T> Default for TaskQueue<T> {
    fn default() -> Self {
        TaskQueue {
            heap: BinaryHeap::new(),
            next_seq: 0,
        }
    }
}

impl<T> TaskQueue<T> {
    pub fn push(&mut self, priority: Priority, item: T) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Entry {
            priority,
            seq,
            item,
        });
    }

    pub fn pop(&mut self) -> Option<T> {
        self.heap.pop().map(|e| e.item)
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Removes and returns every queued task for which `f` is true.
    pub fn remove_where(&mut self, mut f: impl FnMut(&T) -> bool) -> Vec<T> {
        let mut removed = Vec::new();
        let mut kept = BinaryHeap::with_capacity(self.heap.len());
        for e in std::mem::take(&mut self.heap) {
            if f(&e.item) {
                removed.push(e);
            } else {
                kept.push(e);
            }
        }
        self.heap = kept;
        removed.sort_by_key(|e| e.seq);
        removed.into_iter().map(|e| e.item).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highest_priority_first_then_fifo() {
        let mut q = TaskQueue::default();
        q.push(Priority::Stats, "stats");
        q.push(Priority::ScheduledBackup, "b1");
        q.push(Priority::Interactive, "i1");
        q.push(Priority::Prune, "prune");
        q.push(Priority::ScheduledBackup, "b2");
        q.push(Priority::Interactive, "i2");
        q.push(Priority::Check, "check");
        q.push(Priority::Index, "index");
        q.push(Priority::Forget, "forget");
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(
            order,
            [
                "i1", "i2", "prune", "check", "index", "forget", "b1", "b2", "stats"
            ]
        );
        assert!(q.is_empty());
    }

    #[test]
    fn remove_where_keeps_the_rest_in_order() {
        let mut q = TaskQueue::default();
        for i in 0..6 {
            q.push(Priority::ScheduledBackup, i);
        }
        assert_eq!(q.remove_where(|i| i % 2 == 0), vec![0, 2, 4]);
        assert_eq!(q.len(), 3);
        let rest: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(rest, vec![1, 3, 5]);
    }
}
