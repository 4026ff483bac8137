//! Classification metrics: accuracy, confusion matrix (rows = true class, columns =
//! predicted), per-class accuracy (recall; `None` for a class with no samples).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Confusion {
    pub counts: Vec<Vec<u32>>,
}

impl Confusion {
    pub fn new(num_classes: usize, truth: &[usize], predicted: &[usize]) -> Self {
        let mut counts = vec![vec![0u32; num_classes]; num_classes];
        for (&t, &p) in truth.iter().zip(predicted) {
            if t < num_classes && p < num_classes {
                counts[t][p] += 1;
            }
        }
        Self { counts }
    }

    pub fn accuracy(&self) -> f32 {
        let total: u32 = self.counts.iter().flatten().sum();
        let correct: u32 = (0..self.counts.len()).map(|i| self.counts[i][i]).sum();
        if total == 0 {
            0.0
        } else {
            correct as f32 / total as f32
        }
    }

    pub fn per_class_accuracy(&self) -> Vec<Option<f32>> {
        self.counts
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let total: u32 = row.iter().sum();
                (total > 0).then(|| row[i] as f32 / total as f32)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confusion_counts_rows_as_truth() {
        let c = Confusion::new(3, &[0, 0, 1, 1, 1], &[0, 1, 1, 1, 2]);
        assert_eq!(c.counts, vec![vec![1, 1, 0], vec![0, 2, 1], vec![0, 0, 0]]);
        assert!((c.accuracy() - 0.6).abs() < 1e-6);
        assert_eq!(c.per_class_accuracy(), vec![Some(0.5), Some(2.0 / 3.0), None]);
    }
}
