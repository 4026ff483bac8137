//! The tensor names of a classification head and of DANN's domain classifier, in one place:
//! the `VarBuilder` paths their Candle layers are built under, the GPU step's parameters, and
//! the names model and head files hold (safetensors).

/// The hidden layer of a head or of the domain classifier.
pub const HIDDEN: &str = "hidden";
/// The output layer.
pub const OUTPUT: &str = "output";
/// The domain classifier's tensors beside the head's on the GPU (`domain.hidden.weight`).
pub const DOMAIN: &str = "domain";

pub const HIDDEN_WEIGHT: &str = "hidden.weight";
pub const HIDDEN_BIAS: &str = "hidden.bias";
pub const OUTPUT_WEIGHT: &str = "output.weight";
pub const OUTPUT_BIAS: &str = "output.bias";

/// A two-layer module's tensors, hidden layer first: the order the GPU step keeps them.
pub const TWO_LAYERS: [&str; 4] = [HIDDEN_WEIGHT, HIDDEN_BIAS, OUTPUT_WEIGHT, OUTPUT_BIAS];

/// A head's tensors: [`TWO_LAYERS`] with a hidden layer, else the output layer's alone.
pub fn head_tensors(hidden: bool) -> &'static [&'static str] {
    if hidden {
        &TWO_LAYERS
    } else {
        &TWO_LAYERS[2..]
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device};
    use candle_nn::{VarBuilder, VarMap};

    use super::*;
    use crate::model::{MlpHead, MlpHeadSpec};
    use crate::train::dann::DomainClassifier;

    fn built_names(build: impl FnOnce(VarBuilder)) -> Vec<String> {
        let varmap = VarMap::new();
        build(VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu));
        let mut names: Vec<String> = varmap.data().lock().unwrap().keys().cloned().collect();
        names.sort();
        names
    }

    fn sorted(names: &[&str]) -> Vec<String> {
        let mut names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        names.sort();
        names
    }

    /// The layers build exactly the names the GPU step and the files use.
    #[test]
    fn heads_and_the_domain_classifier_build_the_listed_names() {
        for hidden in [0, 8] {
            let spec = MlpHeadSpec { in_dim: 4, hidden, classes: 3 };
            let names = built_names(|vb| drop(MlpHead::load(spec, vb).unwrap()));
            assert_eq!(names, sorted(head_tensors(hidden > 0)), "hidden {hidden}");
        }
        let names = built_names(|vb| drop(DomainClassifier::load(4, vb).unwrap()));
        assert_eq!(names, sorted(&TWO_LAYERS));
    }
}
