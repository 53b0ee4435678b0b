//! `dialogue_facts`: synthetic dialogues for a SIMAMR-style evaluator (Yang et al.,
//! "SIMAMR", arXiv 2404.01129; `../shared/docs/methods.md` §2, its "tiny experiment").
//!
//! A dialogue's **context** is a few facts `(agent, verb, patient)` about distinct people,
//! each written in the active ("alice likes bob") or passive ("bob is liked by alice")
//! voice. A response is judged against it:
//!
//! | response | how it is made | label |
//! |---|---|---|
//! | gold | one context fact restated, in either voice, after an optional filler ("yes ,") | appropriate |
//! | adversarial, `swap` | the gold response with agent and patient exchanged (same words, same voice, same filler) | not |
//! | adversarial, `negate` | the gold response with `never` inserted before the verb (same content words) | not |
//! | random | the gold response of another dialogue, about none of this context's people (off-topic) | not |
//!
//! Adversarial negatives are DailyDialog++-style [paper]: high lexical overlap with the
//! context, wrong meaning. Every utterance also carries its **graph**, the exact triples
//! it asserts (`negated` = AMR's `:polarity -`): the stand-in for an AMR parse [recon: the
//! paper parses with an AMR parser; here the graph is given exactly].
//!
//! Invariants (unit-tested): a gold response's triple is a context fact; an adversarial
//! negative has the same multiset of content words (people and verb lemmas) as its gold
//! response but a triple that is not a context fact; a random negative's triple is not a
//! context fact. Within a context, facts involve distinct people (so a swapped fact is
//! never itself a fact). Everything is drawn from `(seed, data.seed)` only.
//!
//! Text is words separated by single spaces; [`DialogueTokenizer`] maps each word (and
//! each graph symbol, see [`linearize`]) to one id.

use anyhow::{bail, ensure};
use foil_core::{Tokenizer, rng};
use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

/// People, usable as agent or patient.
pub const PEOPLE: [&str; 12] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "oscar",
];
/// Verbs: (lemma, present 3rd person, past participle).
pub const VERBS: [(&str, &str, &str); 8] = [
    ("like", "likes", "liked"),
    ("help", "helps", "helped"),
    ("call", "calls", "called"),
    ("visit", "visits", "visited"),
    ("trust", "trusts", "trusted"),
    ("thank", "thanks", "thanked"),
    ("teach", "teaches", "taught"),
    ("blame", "blames", "blamed"),
];
/// Fillers that may open a response.
pub const FILLERS: [&str; 3] = ["yes ,", "i know ,", "right ,"];
/// Function words of the text (no meaning of their own in the graph).
pub const FUNCTION_WORDS: [&str; 9] = ["yes", ",", "i", "know", "right", "is", "by", "never", "."];
/// Separates the context from the response in the evaluator's text input.
pub const SEP: &str = "|";
/// Graph symbols: AMR's core roles, negative polarity, and the marker that starts the
/// response graph.
pub const GRAPH_SYMBOLS: [&str; 4] = [":arg0", ":arg1", ":polarity-", "<response>"];

/// Random-stream purpose of the data.
const DATA: u64 = 0xD1A1_0600;

/// One asserted relation: indices into [`PEOPLE`] and [`VERBS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Triple {
    pub agent: usize,
    pub verb: usize,
    pub patient: usize,
    /// AMR `:polarity -`.
    pub negated: bool,
}

/// What a response is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseKind {
    Gold,
    /// Adversarial: roles exchanged.
    Swap,
    /// Adversarial: relation negated.
    Negate,
    /// A response from another dialogue.
    Random,
}

impl ResponseKind {
    pub fn appropriate(self) -> bool {
        self == ResponseKind::Gold
    }
    pub fn adversarial(self) -> bool {
        matches!(self, ResponseKind::Swap | ResponseKind::Negate)
    }
}

/// A written fact: its triple and surface choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Surface {
    pub passive: bool,
    /// Index into [`FILLERS`], if any.
    pub filler: Option<usize>,
}

/// A response with its graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub text: String,
    pub triple: Triple,
    pub kind: ResponseKind,
}

/// One dialogue: a context and its candidate responses.
#[derive(Debug, Clone, PartialEq)]
pub struct Dialogue {
    pub context_text: String,
    /// The context's graph: its facts, in the order written.
    pub context: Vec<Triple>,
    pub gold: Response,
    pub adversarial: Response,
    pub random: Response,
}

/// The generated splits.
#[derive(Debug, Clone, PartialEq)]
pub struct DialogueSet {
    pub train: Vec<Dialogue>,
    pub test: Vec<Dialogue>,
}

/// Recipe section: `data: {people: 10, verbs: 8, facts: 3, train: 2000, test: 300}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DialogueFacts {
    /// People used (≤ 12, ≥ 2·facts).
    pub people: usize,
    /// Verbs used (≤ 8).
    pub verbs: usize,
    /// Facts per context (≥ 1).
    pub facts: usize,
    /// Training dialogues.
    pub train: usize,
    /// Test dialogues.
    pub test: usize,
    /// Probability that a fact (context or response) is written in the passive voice.
    pub passive_rate: f64,
    /// Probability that a response opens with a filler.
    pub filler_rate: f64,
    /// Share of adversarial negatives that negate (the rest swap roles).
    pub negate_share: f64,
    /// Extra seed mixed with the run seed.
    pub seed: u64,
}

impl Default for DialogueFacts {
    fn default() -> Self {
        Self {
            people: 12,
            verbs: 8,
            facts: 3,
            train: 2000,
            test: 300,
            passive_rate: 0.5,
            filler_rate: 0.5,
            negate_share: 0.5,
            seed: 0,
        }
    }
}

/// Writes a fact: `[filler] A [never] verbs P` or `[filler] P is [never] verbed by A`.
pub fn write(t: &Triple, s: Surface) -> String {
    let (_, present, participle) = VERBS[t.verb];
    let (a, p) = (PEOPLE[t.agent], PEOPLE[t.patient]);
    let never = if t.negated { " never" } else { "" };
    let body = if s.passive {
        format!("{p} is{never} {participle} by {a}")
    } else {
        format!("{a}{never} {present} {p}")
    };
    match s.filler {
        Some(f) => format!("{} {body}", FILLERS[f]),
        None => body,
    }
}

/// The content words of a text: its words that are people or verb forms, verbs as their
/// lemma, sorted (a multiset).
pub fn content_words(text: &str) -> Vec<String> {
    let mut out: Vec<String> = text
        .split_whitespace()
        .filter_map(|w| {
            if PEOPLE.contains(&w) {
                return Some(w.to_string());
            }
            VERBS
                .iter()
                .find(|(l, p, pp)| w == *l || w == *p || w == *pp)
                .map(|(l, _, _)| l.to_string())
        })
        .collect();
    out.sort();
    out
}

/// The graph of an utterance as symbols, AMR-style (`like :arg0 alice :arg1 bob
/// [:polarity-]` per triple): the graph encoder's input. `response` triples follow the
/// `<response>` marker.
pub fn linearize(context: &[Triple], response: &Triple) -> (Vec<&'static str>, usize) {
    let mut out = Vec::new();
    let push = |out: &mut Vec<&'static str>, t: &Triple| {
        out.extend([
            VERBS[t.verb].0,
            ":arg0",
            PEOPLE[t.agent],
            ":arg1",
            PEOPLE[t.patient],
        ]);
        if t.negated {
            out.push(":polarity-");
        }
    };
    for t in context {
        push(&mut out, t);
    }
    let n_context = out.len();
    out.push("<response>");
    push(&mut out, response);
    (out, n_context)
}

impl DialogueFacts {
    pub fn validate(&self) -> anyhow::Result<()> {
        ensure!(
            self.facts >= 1 && self.people <= PEOPLE.len() && self.people >= 2 * self.facts,
            "dialogue_facts: need 1 ≤ facts and 2·facts ≤ people ≤ {}, got facts {} and people {}",
            PEOPLE.len(),
            self.facts,
            self.people
        );
        ensure!(
            (1..=VERBS.len()).contains(&self.verbs),
            "dialogue_facts: verbs must be in 1..={}, got {}",
            VERBS.len(),
            self.verbs
        );
        ensure!(
            self.train >= 2 && self.test >= 2,
            "dialogue_facts: need at least 2 train and 2 test dialogues (random negatives come from another dialogue), got {} and {}",
            self.train,
            self.test
        );
        for (name, v) in [
            ("passive_rate", self.passive_rate),
            ("filler_rate", self.filler_rate),
            ("negate_share", self.negate_share),
        ] {
            ensure!(
                (0.0..=1.0).contains(&v),
                "dialogue_facts: {name} must be in [0, 1], got {v}"
            );
        }
        Ok(())
    }

    fn surface(&self, r: &mut impl Rng, filler: bool) -> Surface {
        Surface {
            passive: r.random_bool(self.passive_rate),
            filler: (filler && r.random_bool(self.filler_rate))
                .then(|| r.random_range(0..FILLERS.len())),
        }
    }

    /// Context and gold response (its surface) of one dialogue.
    fn draw(&self, r: &mut impl Rng) -> (Vec<Triple>, String, Triple, Surface) {
        let mut people: Vec<usize> = (0..self.people).collect();
        people.shuffle(r);
        let context: Vec<Triple> = (0..self.facts)
            .map(|i| Triple {
                agent: people[2 * i],
                verb: r.random_range(0..self.verbs),
                patient: people[2 * i + 1],
                negated: false,
            })
            .collect();
        let text = context
            .iter()
            .map(|t| write(t, self.surface(r, false)))
            .collect::<Vec<_>>()
            .join(" . ");
        let gold = context[r.random_range(0..context.len())];
        let s = self.surface(r, true);
        (context, text, gold, s)
    }

    fn split(&self, r: &mut impl Rng, n: usize) -> Vec<Dialogue> {
        let drawn: Vec<_> = (0..n).map(|_| self.draw(r)).collect();
        let golds: Vec<Response> = drawn
            .iter()
            .map(|(_, _, t, s)| Response {
                text: write(t, *s),
                triple: *t,
                kind: ResponseKind::Gold,
            })
            .collect();
        drawn
            .iter()
            .enumerate()
            .map(|(i, (context, text, t, s))| {
                let adversarial = if r.random_bool(self.negate_share) {
                    let t2 = Triple {
                        negated: true,
                        ..*t
                    };
                    Response {
                        text: write(&t2, *s),
                        triple: t2,
                        kind: ResponseKind::Negate,
                    }
                } else {
                    let t2 = Triple {
                        agent: t.patient,
                        patient: t.agent,
                        ..*t
                    };
                    Response {
                        text: write(&t2, *s),
                        triple: t2,
                        kind: ResponseKind::Swap,
                    }
                };
                // another dialogue's gold response about none of this context's people
                // (off-topic, as random responses mostly are), at most 1000 draws, then
                // any whose triple is not a fact here
                let mut tries = 0;
                let random = loop {
                    let j = r.random_range(0..n - 1);
                    let j = if j >= i { j + 1 } else { j };
                    let g = golds[j].triple;
                    let off_topic = !context.iter().any(|c| {
                        [c.agent, c.patient]
                            .iter()
                            .any(|&p| p == g.agent || p == g.patient)
                    });
                    tries += 1;
                    if !context.contains(&g) && (off_topic || tries > 1000) {
                        break Response {
                            kind: ResponseKind::Random,
                            ..golds[j].clone()
                        };
                    }
                };
                Dialogue {
                    context_text: text.clone(),
                    context: context.clone(),
                    gold: golds[i].clone(),
                    adversarial,
                    random,
                }
            })
            .collect()
    }

    /// The train and test splits of run seed `seed`.
    pub fn generate(&self, seed: u64) -> anyhow::Result<DialogueSet> {
        self.validate()?;
        let mut r = rng::rng(seed, &[DATA, self.seed]);
        let train = self.split(&mut r, self.train);
        let test = self.split(&mut r, self.test);
        Ok(DialogueSet { train, test })
    }
}

/// Word-level tokenizer over the dialogues' words and graph symbols: id 0 padding, 1
/// end-of-sequence, then [`SEP`], the people, verb forms and lemmas, function words and
/// graph symbols.
#[derive(Debug, Clone)]
pub struct DialogueTokenizer {
    words: Vec<&'static str>,
}

impl Default for DialogueTokenizer {
    fn default() -> Self {
        let mut words = vec!["<pad>", "<eos>", SEP];
        words.extend(PEOPLE);
        for (l, p, pp) in VERBS {
            words.extend([l, p, pp]);
        }
        words.extend(FUNCTION_WORDS);
        words.extend(GRAPH_SYMBOLS);
        let mut seen = std::collections::HashSet::new();
        words.retain(|w| seen.insert(*w));
        Self { words }
    }
}

impl Tokenizer for DialogueTokenizer {
    fn vocab_size(&self) -> usize {
        self.words.len()
    }
    fn encode(&self, text: &str) -> anyhow::Result<Vec<u32>> {
        text.split_whitespace()
            .map(|w| match self.words.iter().position(|x| *x == w) {
                Some(i) if i >= 2 => Ok(i as u32),
                _ => bail!("dialogue tokenizer: unknown word `{w}` in `{text}`"),
            })
            .collect()
    }
    fn decode(&self, ids: &[u32]) -> String {
        ids.iter()
            .filter(|&&i| i >= 2)
            .filter_map(|&i| self.words.get(i as usize).copied())
            .collect::<Vec<_>>()
            .join(" ")
    }
    fn eos_id(&self) -> u32 {
        1
    }
    fn pad_id(&self) -> u32 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(agent: usize, verb: usize, patient: usize, negated: bool) -> Triple {
        Triple {
            agent,
            verb,
            patient,
            negated,
        }
    }

    #[test]
    fn surfaces_by_hand() {
        // alice = 0, bob = 1, like = 0, teach = 6
        let act = Surface {
            passive: false,
            filler: None,
        };
        let pas = Surface {
            passive: true,
            filler: Some(1),
        };
        assert_eq!(write(&t(0, 0, 1, false), act), "alice likes bob");
        assert_eq!(write(&t(0, 6, 1, true), act), "alice never teaches bob");
        assert_eq!(
            write(&t(0, 6, 1, true), pas),
            "i know , bob is never taught by alice"
        );
        // content words: people and verb lemmas, sorted; fillers and "never" are not
        assert_eq!(
            content_words("i know , bob is never taught by alice"),
            vec!["alice", "bob", "teach"]
        );
        // like :arg0 alice :arg1 bob | <response> like :arg0 bob :arg1 alice :polarity-
        let (g, n) = linearize(&[t(0, 0, 1, false)], &t(1, 0, 0, true));
        assert_eq!(n, 5);
        assert_eq!(
            g.join(" "),
            "like :arg0 alice :arg1 bob <response> like :arg0 bob :arg1 alice :polarity-"
        );
    }

    #[test]
    fn negatives_keep_the_words_and_change_the_graph() {
        let cfg = DialogueFacts {
            train: 300,
            test: 50,
            ..DialogueFacts::default()
        };
        let set = cfg.generate(7).unwrap();
        let (mut swaps, mut negates) = (0, 0);
        for d in set.train.iter().chain(&set.test) {
            assert_eq!(d.context.len(), 3);
            assert!(d.context.contains(&d.gold.triple));
            // adversarial: same content-word multiset as the gold response, a triple
            // that is not a fact of the context
            assert_eq!(
                content_words(&d.adversarial.text),
                content_words(&d.gold.text)
            );
            assert_ne!(d.adversarial.triple, d.gold.triple);
            assert!(!d.context.contains(&d.adversarial.triple));
            match d.adversarial.kind {
                ResponseKind::Swap => {
                    swaps += 1;
                    // the very same words, in another order
                    let mut a: Vec<_> = d.adversarial.text.split(' ').collect();
                    let mut g: Vec<_> = d.gold.text.split(' ').collect();
                    a.sort();
                    g.sort();
                    assert_eq!(a, g);
                }
                ResponseKind::Negate => {
                    negates += 1;
                    assert!(d.adversarial.text.contains(" never "));
                }
                k => panic!("adversarial kind {k:?}"),
            }
            // random: from another dialogue, not a fact here, no person of the context
            assert_eq!(d.random.kind, ResponseKind::Random);
            assert!(!d.context.contains(&d.random.triple));
            let people: Vec<&str> = d
                .context
                .iter()
                .flat_map(|c| [PEOPLE[c.agent], PEOPLE[c.patient]])
                .collect();
            assert!(
                !d.random.text.split(' ').any(|w| people.contains(&w)),
                "{}",
                d.random.text
            );
            // the context's words are all content words of its facts
            assert_eq!(content_words(&d.context_text).len(), 9);
        }
        // both kinds are drawn (negate_share 0.5 over 350 dialogues)
        assert!(
            swaps > 100 && negates > 100,
            "{swaps} swaps, {negates} negations"
        );
        // deterministic from the seed, different across seeds
        assert_eq!(cfg.generate(7).unwrap(), set);
        assert_ne!(cfg.generate(8).unwrap().train[0], set.train[0]);
    }

    #[test]
    fn tokenizer_round_trips_and_errors_clearly() {
        let tok = DialogueTokenizer::default();
        let set = DialogueFacts::default().generate(1).unwrap();
        let d = &set.test[0];
        for text in [&d.context_text, &d.gold.text, &d.adversarial.text] {
            let ids = tok.encode(text).unwrap();
            assert_eq!(&tok.decode(&ids), text);
        }
        let (g, _) = linearize(&d.context, &d.adversarial.triple);
        assert_eq!(tok.encode(&g.join(" ")).unwrap().len(), g.len());
        // 3 specials + 12 people + 24 verb forms + 9 function words + 4 graph symbols
        assert_eq!(tok.vocab_size(), 3 + 12 + 24 + 9 + 4);
        let e = tok.encode("alice hugs bob").unwrap_err().to_string();
        assert!(e.contains("`hugs`"), "{e}");
        let e = DialogueFacts {
            people: 5,
            ..DialogueFacts::default()
        }
        .generate(1)
        .unwrap_err()
        .to_string();
        assert!(e.contains("2·facts ≤ people"), "{e}");
    }
}
