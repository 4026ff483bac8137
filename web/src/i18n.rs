//! The page's two languages, English and Simplified Chinese, from the Fluent files under
//! `web/locales/<code>/graft.ftl` (built into the binary). Components read the chosen
//! [`Lang`] from a Yew context ([`use_lang`]) and look their words up with [`t!`]; state keeps
//! what it has to say as a [`Text`] (a message id and its arguments), turned into words when
//! the page shows it, so switching language re-words everything already on screen.
//!
//! Fluent's Unicode isolation marks (U+2068/U+2069 around every argument) are turned off: they
//! end up in attribute values and in what tests and screen readers read.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

use fluent_templates::fluent_bundle::FluentValue;
use fluent_templates::{LanguageIdentifier, Loader};
use yew::prelude::*;

fluent_templates::static_loader! {
    static LOCALES = {
        locales: "./locales",
        fallback_language: "en",
        customise: |bundle| bundle.set_use_isolating(false),
    };
}

/// A language the page speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Lang {
    #[default]
    En,
    ZhCn,
}

/// Something the page will say (an id and its arguments), kept until it is shown in whichever
/// language the page speaks then; the engine's errors arrive as one (`GraftError::user_message`).
pub use graft::message::{MessageArg as Arg, UserMessage as Text};

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::ZhCn];

    /// The BCP 47 code: the picker's option value and `<html lang>`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::ZhCn => "zh-CN",
        }
    }

    /// The language's own name, as the picker shows it.
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::ZhCn => "简体中文",
        }
    }

    /// The page's language for a browser language tag (`zh`, `zh-Hans-CN`, `en-GB`, …);
    /// `None` for languages the page does not speak.
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.split(['-', '_']).next().unwrap_or("").to_ascii_lowercase();
        match primary.as_str() {
            "en" => Some(Lang::En),
            "zh" => Some(Lang::ZhCn),
            _ => None,
        }
    }

    /// Parsed once: every message the page shows looks its language up.
    fn identifier(self) -> &'static LanguageIdentifier {
        static IDENTIFIERS: LazyLock<[LanguageIdentifier; 2]> =
            LazyLock::new(|| Lang::ALL.map(|lang| lang.code().parse().expect("language codes are valid BCP 47")));
        &IDENTIFIERS[self as usize]
    }

    /// The message `id` in this language.
    pub fn tr(self, id: &str) -> String {
        LOCALES.lookup(self.identifier(), id)
    }

    /// The message `id` in this language, with its arguments.
    pub fn tr_args<N: AsRef<str>>(self, id: &str, args: &[(N, Arg)]) -> String {
        let args: HashMap<Cow<'static, str>, FluentValue> = args
            .iter()
            .map(|(name, value)| {
                let value = match value {
                    Arg::Text(s) => FluentValue::from(s.clone()),
                    Arg::Number(n) => FluentValue::from(*n),
                    Arg::Message(message) => FluentValue::from(self.text(message)),
                };
                (Cow::Owned(name.as_ref().to_string()), value)
            })
            .collect();
        LOCALES.lookup_with_args(self.identifier(), id, &args)
    }

    /// `text` in this language (its message arguments worded first).
    pub fn text(self, text: &Text) -> String {
        self.tr_args(&text.id, &text.args)
    }
}

/// The page's language, from the context the app provides.
#[hook]
pub fn use_lang() -> Lang {
    use_context::<Lang>().unwrap_or_default()
}

/// `t!(lang, "id")` or `t!(lang, "id", name = value, …)`: a message in `lang`.
#[macro_export]
macro_rules! t {
    ($lang:expr, $id:literal) => {
        $lang.tr($id)
    };
    ($lang:expr, $id:literal, $($name:ident = $value:expr),+ $(,)?) => {
        $lang.tr_args($id, &[$((stringify!($name), $crate::i18n::Arg::from($value))),+])
    };
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    /// The running tree's `web/` (a build in xtask's shared target folder may come from another
    /// clone of the same files).
    fn web_dir() -> std::path::PathBuf {
        std::env::var_os("CARGO_MANIFEST_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
    }

    fn ftl(code: &str) -> String {
        let path = web_dir().join("locales").join(code).join("graft.ftl");
        std::fs::read_to_string(path).unwrap()
    }

    /// Each message's id with the variables it uses (`{ $name }`).
    fn messages(code: &str) -> BTreeMap<String, BTreeSet<String>> {
        let mut messages: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut current = None;
        for line in ftl(code).lines() {
            let starts_message = line.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
            if starts_message {
                let id = line.split('=').next().unwrap().trim().to_string();
                assert!(!messages.contains_key(&id), "{code}: {id} is defined twice");
                messages.insert(id.clone(), BTreeSet::new());
                current = Some(id);
            } else if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let Some(id) = &current else { continue };
            for piece in line.split("$").skip(1) {
                let name: String = piece.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                messages.get_mut(id).unwrap().insert(name);
            }
        }
        messages
    }

    #[test]
    fn every_message_exists_in_both_languages_with_its_arguments() {
        let (en, zh) = (messages("en"), messages("zh-CN"));
        let only_en: Vec<_> = en.keys().filter(|id| !zh.contains_key(*id)).collect();
        let only_zh: Vec<_> = zh.keys().filter(|id| !en.contains_key(*id)).collect();
        assert!(only_en.is_empty(), "missing in zh-CN: {only_en:?}");
        assert!(only_zh.is_empty(), "missing in en: {only_zh:?}");
        // Chinese has no plural forms: a count that only picks the English plural may go unused.
        for (id, args) in &en {
            let dropped: Vec<_> = args.difference(&zh[id]).filter(|name| *name != "count").collect();
            assert!(dropped.is_empty(), "{id}: zh-CN does not use {dropped:?}");
            assert!(zh[id].is_subset(args), "{id}: zh-CN uses arguments that en does not");
        }
        assert!(en.len() > 150, "{} messages", en.len());
    }

    /// Every id the page's code asks for (`t!(lang, "id"…)`, `Text::new("id")`) is in the files.
    #[test]
    fn every_message_the_code_uses_is_defined() {
        let en = messages("en");
        let mut used = BTreeSet::new();
        let web = &web_dir();
        // The page's code, and the engine's, whose errors and problems name their messages.
        let mut dirs = vec![web.join("src"), web.join("../src")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let code = std::fs::read_to_string(&path).unwrap();
                    let markers = ["t!(lang, \"", "t!(props.lang, \"", "Text::new(\"", "UserMessage::new(\"", " m(\""];
                    for marker in markers {
                        for piece in code.split(marker).skip(1) {
                            used.insert(piece.split('"').next().unwrap().to_string());
                        }
                    }
                }
            }
        }
        used.remove("id");
        let missing: Vec<_> = used.iter().filter(|id| !en.contains_key(*id)).collect();
        assert!(missing.is_empty(), "used but not defined: {missing:?}");
        assert!(used.len() > 200, "{} ids found in the code", used.len());
    }

    /// Every message `words` needs (its id and those of its message arguments) is defined.
    fn assert_defined(en: &BTreeMap<String, BTreeSet<String>>, words: &Text) {
        assert!(en.contains_key(&words.id), "{} is not defined", words.id);
        for (name, arg) in &words.args {
            assert!(en[&words.id].contains(name), "{} does not use ${name}", words.id);
            if let Arg::Message(inner) = arg {
                assert_defined(en, inner);
            }
        }
    }

    #[test]
    fn every_divergence_advice_is_worded() {
        use graft::error::{DivergedAdvice, GraftError};
        let en = messages("en");
        for advice in
            [DivergedAdvice::SmallerLearningRate, DivergedAdvice::SmallerBackboneRate, DivergedAdvice::NoWeightsKept]
        {
            let error = GraftError::Diverged { epoch: 3, advice };
            assert_defined(&en, &error.user_message());
            assert_eq!(Lang::En.text(&error.user_message()), error.to_string());
        }
    }

    /// The settings' problems build their ids from the setting's name: each one is defined.
    #[test]
    fn every_setting_problem_is_worded() {
        use graft::train::TrainConfig;
        let en = messages("en");
        let breaks: [fn(&mut TrainConfig); 12] = [
            |c| c.epochs = 0,
            |c| c.batch_size = 0,
            |c| c.learning_rate = 0.0,
            |c| c.backbone_learning_rate = 2.0,
            |c| c.hidden = 100_000,
            |c| c.dropout = 0.99,
            |c| c.weight_decay = 2.0,
            |c| c.val_fraction = 0.99,
            |c| (c.unfreeze, c.head_epochs) = (2, 100),
            |c| c.augment.strength = 2.0,
            |c| c.adapt.weight = 0.0,
            |c| c.unfreeze = 50,
        ];
        for (i, break_one) in breaks.iter().enumerate() {
            let mut config = TrainConfig::default();
            break_one(&mut config);
            let problem = config.validate_for(18).expect_err(&format!("case {i} is refused"));
            let words = problem.user_message();
            assert_defined(&en, &words);
            assert_eq!(Lang::En.text(&words), problem.to_string().trim_start_matches("invalid setting: "));
            assert!(!Lang::ZhCn.text(&words).contains("setting-name"), "{}", Lang::ZhCn.text(&words));
        }
    }

    #[test]
    fn messages_are_worded_in_each_language_without_isolation_marks() {
        assert_eq!(t!(Lang::En, "train-button"), "Train");
        assert_eq!(t!(Lang::ZhCn, "train-button"), "训练");
        let zh = t!(Lang::ZhCn, "project-option", name = "猫和狗", samples = 3u32);
        assert_eq!(zh, "猫和狗（3 张图片）");
        assert_eq!(t!(Lang::En, "project-option", name = "Pets", samples = 1u32), "Pets (1 image)");
        assert_eq!(t!(Lang::En, "project-option", name = "Pets", samples = 2u32), "Pets (2 images)");
        let text = Text::new("training-stopped").arg("why", "the loss exploded").arg("epoch", 4u32);
        assert_eq!(Lang::En.text(&text), "Training stopped: the loss exploded. The best weights (epoch 4) were kept.");
        assert!(!Lang::ZhCn.text(&text).contains(['\u{2068}', '\u{2069}']));
    }

    #[test]
    fn browser_languages_map_to_the_page_languages() {
        assert_eq!(Lang::from_tag("zh-CN"), Some(Lang::ZhCn));
        assert_eq!(Lang::from_tag("zh-Hans-SG"), Some(Lang::ZhCn));
        assert_eq!(Lang::from_tag("en-GB"), Some(Lang::En));
        assert_eq!(Lang::from_tag("fr"), None);
        for lang in Lang::ALL {
            assert_eq!(Lang::from_tag(lang.code()), Some(lang));
        }
    }
}
