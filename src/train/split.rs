//! Stratified train/validation split: each class gives `round(n_c * fraction)` of its samples
//! to validation (shuffled with the seed), but always keeps at least one for training.

use super::rng::SplitMix64;

#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    pub train: Vec<usize>,
    pub val: Vec<usize>,
}

/// Splits sample indices `0..labels.len()` by class.
pub fn stratified_split(labels: &[usize], num_classes: usize, val_fraction: f32, seed: u64) -> Split {
    let mut rng = SplitMix64::new(seed);
    let mut split = Split { train: Vec::new(), val: Vec::new() };
    for class in 0..num_classes {
        let mut members: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        rng.shuffle(&mut members);
        let wanted = (members.len() as f32 * val_fraction.clamp(0.0, 1.0)).round() as usize;
        let n_val = wanted.min(members.len().saturating_sub(1));
        split.val.extend_from_slice(&members[..n_val]);
        split.train.extend_from_slice(&members[n_val..]);
    }
    split.train.sort_unstable();
    split.val.sort_unstable();
    split
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_class_is_split_in_proportion() {
        let labels: Vec<usize> = (0..100)
            .map(|i| {
                if i < 80 {
                    0
                } else if i < 95 {
                    1
                } else {
                    2
                }
            })
            .collect();
        let split = stratified_split(&labels, 3, 0.15, 7);
        let count = |set: &[usize], c| set.iter().filter(|&&i| labels[i] == c).count();
        assert_eq!(count(&split.val, 0), 12);
        assert_eq!(count(&split.val, 1), 2);
        assert_eq!(count(&split.val, 2), 1);
        assert_eq!(split.train.len() + split.val.len(), 100);
        let mut all = [split.train.clone(), split.val.clone()].concat();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn single_sample_classes_stay_in_training_and_seed_is_reproducible() {
        let labels = vec![0, 1, 1, 1];
        let split = stratified_split(&labels, 2, 0.9, 1);
        assert!(split.train.contains(&0));
        assert_eq!(split.val.len(), 2);
        assert_eq!(stratified_split(&labels, 2, 0.5, 3), stratified_split(&labels, 2, 0.5, 3));
    }
}
