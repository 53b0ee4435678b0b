//! A character-level tokenizer: id 0 is padding, id 1 end-of-sequence, then one id per
//! character of a fixed alphabet, in the alphabet's order.

use anyhow::bail;
use foil_core::Tokenizer;

/// Character tokenizer over a fixed alphabet.
#[derive(Debug, Clone, PartialEq)]
pub struct CharTokenizer {
    alphabet: Vec<char>,
}

/// Padding id.
pub const PAD: u32 = 0;
/// End-of-sequence id.
pub const EOS: u32 = 1;
const SPECIALS: u32 = 2;

impl CharTokenizer {
    /// A tokenizer for the characters of `alphabet` (duplicates are an error).
    pub fn new(alphabet: &str) -> anyhow::Result<Self> {
        let chars: Vec<char> = alphabet.chars().collect();
        for (i, c) in chars.iter().enumerate() {
            if chars[..i].contains(c) {
                bail!("character {c:?} appears twice in the tokenizer alphabet");
            }
        }
        Ok(Self { alphabet: chars })
    }
}

impl Tokenizer for CharTokenizer {
    fn vocab_size(&self) -> usize {
        self.alphabet.len() + SPECIALS as usize
    }

    fn encode(&self, text: &str) -> anyhow::Result<Vec<u32>> {
        text.chars()
            .enumerate()
            .map(|(i, c)| match self.alphabet.iter().position(|&a| a == c) {
                Some(p) => Ok(p as u32 + SPECIALS),
                None => bail!(
                    "character {c:?} at offset {i} of {text:?} is not in the vocabulary {:?}",
                    self.alphabet.iter().collect::<String>()
                ),
            })
            .collect()
    }

    fn decode(&self, ids: &[u32]) -> String {
        ids.iter()
            .filter(|&&i| i >= SPECIALS)
            .filter_map(|&i| self.alphabet.get((i - SPECIALS) as usize))
            .collect()
    }

    fn eos_id(&self) -> u32 {
        EOS
    }

    fn pad_id(&self) -> u32 {
        PAD
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_numbers_ids_after_the_specials() {
        let t = CharTokenizer::new("ab:").unwrap();
        assert_eq!(t.vocab_size(), 5);
        assert_eq!(t.encode("ba:").unwrap(), vec![3, 2, 4]);
        assert_eq!(t.decode(&[3, 2, EOS, PAD, 4]), "ba:");
    }

    #[test]
    fn unknown_character_is_a_located_error() {
        let t = CharTokenizer::new("ab").unwrap();
        let e = t.encode("abz").unwrap_err().to_string();
        assert!(e.contains("'z' at offset 2"), "{e}");
        assert!(CharTokenizer::new("aa").is_err());
    }
}
