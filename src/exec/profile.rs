//! Where an executor's time goes: milliseconds accumulated per kind of unit (the benchmark's
//! profile). Kept apart from the executors, which only report each unit's start time.

use super::plan::Unit;

pub struct Profile<'a> {
    clock: &'a dyn Fn() -> f64,
    blocks: usize,
    totals: Vec<(&'static str, f64)>,
}

impl<'a> Profile<'a> {
    /// `clock` reads milliseconds; `blocks` is the plan's block count (to tell its last conv).
    pub fn new(clock: &'a dyn Fn() -> f64, blocks: usize) -> Self {
        Self { clock, blocks, totals: Vec::new() }
    }

    pub fn now(&self) -> f64 {
        (self.clock)()
    }

    /// Adds the time since `start` to the kind of `unit` (in block `block_index`).
    pub fn record(&mut self, unit: &Unit, block_index: usize, start: f64) {
        let ms = self.now() - start;
        let kind = unit_kind(unit, block_index + 1 == self.blocks);
        match self.totals.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, total)) => *total += ms,
            None => self.totals.push((kind, ms)),
        }
    }

    pub fn totals(self) -> Vec<(&'static str, f64)> {
        self.totals
    }
}

fn unit_kind(unit: &Unit, last_block: bool) -> &'static str {
    match unit {
        Unit::Conv3x3 { .. } => "stem conv 3x3",
        Unit::Depthwise { window, .. } if window.kernel == 5 => "depthwise 5x5",
        Unit::Depthwise { .. } => "depthwise 3x3",
        Unit::Pointwise { .. } if last_block => "last conv 1x1",
        Unit::Pointwise { relu: true, .. } => "expand 1x1",
        Unit::Pointwise { .. } => "project 1x1",
    }
}
