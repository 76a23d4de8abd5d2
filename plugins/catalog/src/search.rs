//! Product search, the pure half: how texts become index words, how a shopper's query
//! becomes words with their alternatives (prefix, plural, synonyms, a typo's
//! correction), and the SQL that finds, ranks and counts matches on SQLite (FTS5) and
//! PostgreSQL (`tsvector` + GIN). Everything here is deterministic and unit-tested;
//! [`crate::search_index`] runs it against the database.
//!
//! Text → words: lower-cased runs of letters and ASCII digits (apostrophes inside a
//! word are dropped: "Haldiram's" → `haldirams`); each word is indexed as written and,
//! when different, as its [`stem`] (English plurals: "tomatoes" → `tomato`). Indexed
//! texts are stored with a space before and after every word, so "word `w` is in the
//! name" is `name LIKE '% w %'` on both backends.

use std::collections::{BTreeMap, BTreeSet};

use kirana_sdk::sql::{Dialect, Value};

/// Version of the text → words rules. Stored with the index; a catalog whose index was
/// built by other rules is re-indexed by the migration.
pub const FORMAT: &str = "1";

/// Words shorter than this (as typed) are never corrected.
pub const MIN_TYPO_LEN: usize = 5;

/// Prefix lengths whose one-deletion variants the vocabulary keeps (SymSpell's prefix
/// trick: a typo is looked for in the first [`MAX_VARIANT_PREFIX`] letters).
pub const MIN_VARIANT_PREFIX: usize = MIN_TYPO_LEN;
pub const MAX_VARIANT_PREFIX: usize = 8;

/// Longest word kept (longer runs are cut): bounds every derived string.
pub const MAX_WORD: usize = 40;

/// Completions `GET /products/suggest` answers at most.
pub const SUGGESTIONS: i64 = 8;

/// The words of `text`, lower-cased, in order (duplicates kept).
pub fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut len = 0;
    for ch in text.chars() {
        if ch.is_alphabetic() || ch.is_ascii_digit() {
            if len < MAX_WORD {
                current.extend(ch.to_lowercase());
                len += 1;
            }
        } else if matches!(ch, '\'' | '’') && !current.is_empty() {
            // "lay's" is one word.
        } else if !current.is_empty() {
            out.push(std::mem::take(&mut current));
            len = 0;
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// A word's English singular, by suffix rules (the same on both sides, so they only
/// need to agree with themselves): `tomatoes`/`tomatos` → `tomato`, `berries` →
/// `berry`, `cookies`/`cookie` → `cooky`, `boxes` → `box`, `glasses` → `glass`,
/// `chips` → `chip`. Words of 3 letters or fewer and words with digits are kept.
pub fn stem(word: &str) -> String {
    let n = word.chars().count();
    if n <= 3 || !word.chars().all(char::is_alphabetic) {
        return word.to_string();
    }
    let cut = |k: usize| word[..word.len() - k].to_string();
    if word.ends_with("sses") {
        return cut(2);
    }
    if n > 4 && word.ends_with("ies") {
        return format!("{}y", cut(3));
    }
    if n > 4 && word.ends_with("oes") {
        return cut(2);
    }
    if ["ches", "shes", "xes", "zes"]
        .iter()
        .any(|suffix| word.ends_with(suffix))
    {
        return cut(2);
    }
    if word.ends_with('s') && !["ss", "us", "is"].iter().any(|s| word.ends_with(s)) {
        return cut(1);
    }
    if n > 4 && word.ends_with("ie") {
        return format!("{}y", cut(2));
    }
    word.to_string()
}

/// A text as the index stores it: ` word stem word2 … ` (each word, then its stem when
/// different), with a space at both ends.
pub fn index_text(text: &str) -> String {
    let mut out = String::from(" ");
    for word in tokens(text) {
        let s = stem(&word);
        out.push_str(&word);
        out.push(' ');
        if s != word {
            out.push_str(&s);
            out.push(' ');
        }
    }
    out
}

/// A product's indexed texts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Doc {
    pub name: String,
    pub brand: String,
    pub category: String,
    pub description: String,
}

impl Doc {
    pub fn new(name: &str, brand: &str, category: &str, description: &str) -> Doc {
        Doc {
            name: index_text(name),
            brand: index_text(brand),
            category: index_text(category),
            description: index_text(description),
        }
    }

    /// Every distinct word of the document (the vocabulary it contributes).
    pub fn words(&self) -> BTreeSet<String> {
        [&self.name, &self.brand, &self.category, &self.description]
            .iter()
            .flat_map(|t| t.split_whitespace())
            .map(str::to_string)
            .collect()
    }
}

/// The one-deletion variants the vocabulary keeps for `word`: for each prefix of
/// [`MIN_VARIANT_PREFIX`]..=[`MAX_VARIANT_PREFIX`] letters, the prefix and the prefix
/// without one letter. Shorter words and words with digits have none.
pub fn vocabulary_variants(word: &str) -> BTreeSet<String> {
    let chars: Vec<char> = word.chars().collect();
    let mut out = BTreeSet::new();
    if chars.len() < MIN_VARIANT_PREFIX || !chars.iter().all(|c| c.is_alphabetic()) {
        return out;
    }
    for k in MIN_VARIANT_PREFIX..=chars.len().min(MAX_VARIANT_PREFIX) {
        let prefix = &chars[..k];
        out.insert(prefix.iter().collect());
        out.extend(deletions(prefix));
    }
    out
}

/// The variants a query word is looked up by: its first [`MAX_VARIANT_PREFIX`] letters
/// and those without one letter. Two words whose variants meet differ by at most one
/// insertion, deletion, substitution or swap of neighbours in those letters.
pub fn query_variants(word: &str) -> BTreeSet<String> {
    let chars: Vec<char> = word.chars().take(MAX_VARIANT_PREFIX).collect();
    let mut out: BTreeSet<String> = deletions(&chars).collect();
    out.insert(chars.iter().collect());
    out
}

fn deletions(chars: &[char]) -> impl Iterator<Item = String> + '_ {
    (0..chars.len()).map(move |i| {
        chars
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, c)| c)
            .collect()
    })
}

/// Optimal-string-alignment distance (insertions, deletions, substitutions and swaps of
/// neighbours), stopping early once it passes `limit`.
pub fn distance(a: &str, b: &str, limit: usize) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > limit {
        return limit + 1;
    }
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = d;
        }
    }
    rows[a.len()][b.len()]
}

/// The best correction of `typed` among `candidates` (vocabulary words with how many
/// products hold them): a word at distance 1 (or, for a word being typed, a word
/// starting with something at distance 1, which is what replaces `typed`); the most
/// common wins, then the alphabetically first. `None` when nothing is that close.
pub fn best_correction(typed: &str, prefix: bool, candidates: &[(String, i64)]) -> Option<String> {
    let n = typed.chars().count();
    let mut best: Option<(i64, String)> = None;
    for (word, docs) in candidates {
        let replacement = if prefix {
            // The candidate's start closest to what was typed (one letter more or
            // less is still one typo).
            let chars: Vec<char> = word.chars().collect();
            (n.saturating_sub(1)..=n + 1)
                .filter(|k| *k >= 1 && *k <= chars.len())
                .map(|k| chars[..k].iter().collect::<String>())
                .find(|p| distance(typed, p, 1) <= 1)
        } else {
            (distance(typed, word, 1) <= 1).then(|| word.clone())
        };
        let Some(replacement) = replacement else {
            continue;
        };
        let better = match &best {
            None => true,
            Some((d, w)) => *docs > *d || (*docs == *d && replacement < *w),
        };
        if better {
            best = Some((*docs, replacement));
        }
    }
    best.map(|(_, w)| w)
}

/// Synonyms: for a (stemmed) query word, the other words it also finds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Synonyms(BTreeMap<String, BTreeSet<String>>);

/// The synonyms used when `[catalog] synonyms` is not set: everyday Hindi names and
/// common misspellings of the seeded groceries. `a > b` makes `a` also find `b`;
/// `a = b = c` makes each find the others.
pub const DEFAULT_SYNONYMS: &str = "aata > atta, ata > atta, curd = dahi, yogurt = yoghurt, \
    jeera = cumin, haldi = turmeric, dhania = coriander, dhaniya = coriander, \
    bhindi = okra, palak = spinach, chawal = rice, doodh = milk, anda = egg, \
    chini = sugar, namak = salt, makhan = butter, makkhan = butter, aloo = potato, \
    alu = potato, pyaz = onion, pyaaz = onion, kanda = onion, tamatar = tomato, \
    adrak = ginger, lehsun = garlic, lahsun = garlic, mirch = chilli, mirchi = chilli, \
    chili = chilli, nimbu = lemon, kela = banana, seb = apple, anaar = pomegranate, \
    gajar = carrot, kheera = cucumber, gobi = cauliflower, patta gobi > cabbage, \
    chai = tea, paani > water, pani > water, tel = oil, chana = chickpea, \
    arhar = toor, masoor = lentil, biscuit = cookie, crisps = chips, soda = cola, \
    coke > cola, maida = flour, sooji = rava = semolina, noodle = maggi";

impl Synonyms {
    /// Parses `a > b, c = d = e` (entries separated by `,` or `;`; words may be
    /// written in any case and form, they are stemmed). An entry whose side has
    /// several words uses only its first word when it is the source (`patta gobi >`
    /// is `patta >`) and every word as separate targets. Bad entries are skipped.
    pub fn parse(spec: &str) -> Synonyms {
        let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let words = |side: &str| -> Vec<String> {
            tokens(side).iter().map(|w| stem(w)).collect::<Vec<_>>()
        };
        for entry in spec.split([',', ';', '\n']) {
            if let Some((from, to)) = entry.split_once('>') {
                let (Some(from), to) = (words(from).into_iter().next(), words(to)) else {
                    continue;
                };
                for t in to {
                    if t != from {
                        map.entry(from.clone()).or_default().insert(t);
                    }
                }
            } else {
                let group: Vec<String> = entry
                    .split('=')
                    .filter_map(|side| words(side).into_iter().next())
                    .collect();
                for a in &group {
                    for b in &group {
                        if a != b {
                            map.entry(a.clone()).or_default().insert(b.clone());
                        }
                    }
                }
            }
        }
        Synonyms(map)
    }

    /// The words `word` (stemmed) also finds.
    pub fn of(&self, word: &str) -> impl Iterator<Item = &String> {
        self.0.get(word).into_iter().flatten()
    }
}

/// One word of a query with what it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryWord {
    /// As typed (lower-cased).
    pub typed: String,
    /// Index words it matches exactly: the word and its stem.
    pub exact: Vec<String>,
    /// Matched as a word start too (the last word, while it is being typed).
    pub prefix: bool,
    /// Synonyms' index words (matched exactly).
    pub synonyms: Vec<String>,
}

impl QueryWord {
    pub fn new(typed: &str, prefix: bool, synonyms: &Synonyms) -> QueryWord {
        let s = stem(typed);
        let mut exact = vec![typed.to_string()];
        if s != typed {
            exact.push(s.clone());
        }
        let synonyms = synonyms
            .of(&s)
            .chain(synonyms.of(typed))
            .filter(|w| !exact.contains(w))
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        QueryWord {
            typed: typed.to_string(),
            exact,
            prefix,
            synonyms,
        }
    }

    /// Whether a typo in it may be corrected.
    pub fn correctable(&self) -> bool {
        self.typed.chars().count() >= MIN_TYPO_LEN && self.typed.chars().all(char::is_alphabetic)
    }
}

/// A parsed query: its words, at most one per distinct typed word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    pub words: Vec<QueryWord>,
}

impl SearchQuery {
    /// The words of `q`. The last word is matched as a prefix too unless `q` ends
    /// after it (a space or punctuation: the shopper finished that word).
    pub fn parse(q: &str, synonyms: &Synonyms) -> SearchQuery {
        let mut typed: Vec<String> = Vec::new();
        for t in tokens(q) {
            if !typed.contains(&t) {
                typed.push(t);
            }
        }
        let still_typing = q
            .chars()
            .last()
            .is_some_and(|c| c.is_alphabetic() || c.is_ascii_digit());
        let last = typed.len().saturating_sub(1);
        let words = typed
            .iter()
            .enumerate()
            .map(|(i, t)| QueryWord::new(t, still_typing && i == last, synonyms))
            .collect();
        SearchQuery { words }
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The query with word `i` replaced by `correction` (keeping its prefix mode).
    pub fn corrected(&self, i: usize, correction: &str, synonyms: &Synonyms) -> SearchQuery {
        let mut out = self.clone();
        if let Some(w) = out.words.get_mut(i) {
            *w = QueryWord::new(correction, w.prefix, synonyms);
        }
        out
    }

    /// A stable text naming the query (for cache keys).
    pub fn key(&self) -> String {
        self.words
            .iter()
            .map(|w| format!("{}{}", w.typed, if w.prefix { "*" } else { "" }))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The full-text query: every word (any of its forms) must match. SQLite FTS5:
    /// `("tomato" OR "tamatar") AND ("ketch"*)`, each word a quoted string so nothing
    /// typed is ever FTS syntax; PostgreSQL: `('tomato' | 'tamatar') & ('ketch':*)`.
    /// `name_only` restricts it to product names.
    pub fn fts(&self, dialect: Dialect, name_only: bool) -> String {
        let groups: Vec<String> = self
            .words
            .iter()
            .map(|w| {
                let mut alts: Vec<String> = Vec::new();
                for e in &w.exact {
                    alts.push(term(dialect, e, w.prefix, name_only));
                }
                for s in &w.synonyms {
                    alts.push(term(dialect, s, false, name_only));
                }
                let or = match dialect {
                    Dialect::Sqlite => " OR ",
                    Dialect::Postgres => " | ",
                };
                format!("({})", alts.join(or))
            })
            .collect();
        match dialect {
            Dialect::Sqlite => {
                let all = groups.join(" AND ");
                if name_only {
                    format!("name : ({all})")
                } else {
                    all
                }
            }
            Dialect::Postgres => groups.join(" & "),
        }
    }
}

fn term(dialect: Dialect, word: &str, prefix: bool, name_only: bool) -> String {
    match dialect {
        Dialect::Sqlite => {
            let quoted = format!("\"{}\"", word.replace('"', "\"\""));
            if prefix {
                format!("{quoted}*")
            } else {
                quoted
            }
        }
        Dialect::Postgres => {
            let quoted = format!("'{}'", word.replace('\\', "").replace('\'', "''"));
            match (prefix, name_only) {
                (true, true) => format!("{quoted}:*A"),
                (true, false) => format!("{quoted}:*"),
                (false, true) => format!("{quoted}:A"),
                (false, false) => quoted,
            }
        }
    }
}

/// Numbered parameters in the order they are added.
#[derive(Debug, Default)]
pub struct Binds(pub Vec<Value>);

impl Binds {
    pub fn text(&mut self, s: impl Into<String>) -> String {
        self.0.push(Value::Text(s.into()));
        format!("${}", self.0.len())
    }
    pub fn int(&mut self, n: i64) -> String {
        self.0.push(Value::Int(n));
        format!("${}", self.0.len())
    }
}

/// Indexed columns and their weight in the relevance score: any name match outranks
/// any brand match, which outranks category, which outranks description.
pub const COLUMNS: [(&str, i64); 4] = [
    ("s.name", 1000),
    ("s.brand", 100),
    ("s.category", 10),
    ("s.description", 1),
];

/// The relevance of a matched row: for each query word, the best of (column weight ×
/// 10 for the word as typed or its plural/singular, × 9 for a word it starts, × 8 for
/// a synonym), summed over words. `columns` limits it (suggest scores names only).
pub fn score(q: &SearchQuery, b: &mut Binds, columns: &[(&str, i64)]) -> String {
    let mut parts = Vec::new();
    for w in &q.words {
        let mut whens = Vec::new();
        for (col, weight) in columns {
            let any = |b: &mut Binds, words: &[String], pattern: &dyn Fn(&str) -> String| {
                words
                    .iter()
                    .map(|x| format!("{col} LIKE {}", b.text(pattern(x))))
                    .collect::<Vec<_>>()
                    .join(" OR ")
            };
            whens.push(format!(
                "WHEN {} THEN {}",
                any(b, &w.exact, &|x| format!("% {x} %")),
                weight * 10
            ));
            if w.prefix {
                whens.push(format!(
                    "WHEN {} THEN {}",
                    any(b, &w.exact, &|x| format!("% {x}%")),
                    weight * 9
                ));
            }
            if !w.synonyms.is_empty() {
                whens.push(format!(
                    "WHEN {} THEN {}",
                    any(b, &w.synonyms, &|x| format!("% {x} %")),
                    weight * 8
                ));
            }
        }
        parts.push(format!("(CASE {} ELSE 0 END)", whens.join(" ")));
    }
    if parts.is_empty() {
        "0".into()
    } else {
        parts.join(" + ")
    }
}

/// `FROM … WHERE <full-text match>` of a search: the match joined to its product and
/// category. SQLite reads the FTS5 table (whose rowid is `product_search.rid`),
/// PostgreSQL the GIN-indexed `document` column.
pub fn matched_from(q: &SearchQuery, b: &mut Binds, dialect: Dialect, name_only: bool) -> String {
    let query = b.text(q.fts(dialect, name_only));
    match dialect {
        Dialect::Sqlite => format!(
            "FROM product_fts f JOIN product_search s ON s.rid = f.rowid \
             JOIN products p ON p.id = s.product_id JOIN categories c ON c.id = p.category_id \
             WHERE product_fts MATCH {query}"
        ),
        Dialect::Postgres => format!(
            "FROM product_search s JOIN products p ON p.id = s.product_id \
             JOIN categories c ON c.id = p.category_id \
             WHERE s.document @@ to_tsquery('simple', {query})"
        ),
    }
}

/// The relevance order: in stock first, then score, then the shorter (more exact)
/// name, then by name and id for a stable order.
pub fn relevance_order(dialect: Dialect) -> String {
    format!(
        "(CASE WHEN p.stock > 0 THEN 0 ELSE 1 END), score DESC, LENGTH(s.name), {}",
        crate::listing::name_order(dialect)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syn() -> Synonyms {
        Synonyms::parse(DEFAULT_SYNONYMS)
    }

    #[test]
    fn tokens_fold_case_and_drop_punctuation() {
        assert_eq!(
            tokens("Haldiram's  ALOO-Bhujia (200g) 100% \"NEAR\" OR *"),
            ["haldirams", "aloo", "bhujia", "200g", "100", "near", "or"]
        );
        assert!(tokens("*** -- \" ' ( )").is_empty());
        assert_eq!(tokens(&"a".repeat(100))[0].len(), MAX_WORD);
        assert_eq!(tokens("Crème Brûlée"), ["crème", "brûlée"]);
    }

    #[test]
    fn plurals_stem_to_the_singular() {
        for (plural, singular) in [
            ("tomatoes", "tomato"),
            ("tomatos", "tomato"),
            ("potatoes", "potato"),
            ("berries", "berry"),
            ("cookies", "cooky"),
            ("cookie", "cooky"),
            ("boxes", "box"),
            ("peaches", "peach"),
            ("glasses", "glass"),
            ("chips", "chip"),
            ("eggs", "egg"),
            ("noodles", "noodle"),
            ("bananas", "banana"),
        ] {
            assert_eq!(stem(plural), stem(singular), "{plural}");
            assert_eq!(stem(plural), singular, "{plural}");
        }
        for kept in [
            "dal", "gas", "glass", "citrus", "dahi", "200g", "masala", "plus",
        ] {
            assert_eq!(stem(kept), kept);
        }
    }

    #[test]
    fn index_texts_hold_words_and_stems_between_spaces() {
        assert_eq!(index_text("Tomatoes, Fresh!"), " tomatoes tomato fresh ");
        assert_eq!(index_text(""), " ");
        let d = Doc::new("Lay's Chips", "Lay's", "Snacks", "Crispy");
        assert_eq!(d.name, " lays lay chips chip ");
        let words: Vec<String> = d.words().into_iter().collect();
        assert_eq!(
            words,
            ["chip", "chips", "crispy", "lay", "lays", "snack", "snacks"]
        );
    }

    #[test]
    fn a_typo_meets_its_word_through_the_variants() {
        let meets = |typed: &str, word: &str| {
            !query_variants(typed).is_disjoint(&vocabulary_variants(word))
        };
        assert!(meets("bannana", "banana"), "an extra letter");
        assert!(meets("tomto", "tomato"), "a missing letter");
        assert!(meets("tamato", "tomato"), "a wrong letter");
        assert!(meets("tomaot", "tomato"), "two letters swapped");
        assert!(meets("tamat", "tomato"), "a wrong letter in a prefix");
        assert!(!meets("banana", "tomato"));
        assert!(vocabulary_variants("milk").is_empty());
        assert!(vocabulary_variants("200ml").is_empty());
        // Variants are bounded by the prefix length, however long the word.
        assert!(vocabulary_variants(&"x".repeat(40)).len() <= 4 * 9);
    }

    #[test]
    fn distances() {
        assert_eq!(distance("tomato", "tomato", 1), 0);
        assert_eq!(distance("bannana", "banana", 1), 1);
        assert_eq!(distance("tomaot", "tomato", 1), 1);
        assert!(distance("tamatr", "tomato", 1) > 1);
        assert!(distance("a", "abcdef", 1) > 1);
    }

    #[test]
    fn corrections_pick_the_closest_most_common_word() {
        let c = |w: &str, n: i64| (w.to_string(), n);
        let candidates = [c("banana", 3), c("bandana", 1), c("cabana", 9)];
        assert_eq!(
            best_correction("bannana", false, &candidates).as_deref(),
            Some("banana")
        );
        assert_eq!(best_correction("xxxxxx", false, &candidates), None);
        // Being typed: the start of the word replaces what was typed.
        assert_eq!(
            best_correction("tamat", true, &[c("tomato", 2)]).as_deref(),
            Some("tomat")
        );
        // Equally common: alphabetical.
        assert_eq!(
            best_correction("mangp", false, &[c("mango", 1), c("mange", 1)]).as_deref(),
            Some("mange")
        );
    }

    #[test]
    fn synonyms_parse_one_way_and_both_ways() {
        let s = Synonyms::parse("Aata > atta; curd = dahi = Yogurts, bad, > x, = ,");
        let of = |w: &str| s.of(w).cloned().collect::<Vec<_>>();
        assert_eq!(of("aata"), ["atta"]);
        assert!(of("atta").is_empty());
        assert_eq!(of("curd"), ["dahi", "yogurt"]);
        assert_eq!(of("yogurt"), ["curd", "dahi"]);
        assert!(Synonyms::parse("").0.is_empty());
        // The shipped list parses into something useful.
        assert_eq!(syn().of("jeera").cloned().collect::<Vec<_>>(), ["cumin"]);
        assert!(syn().of("dahi").any(|w| w == "curd"));
    }

    #[test]
    fn queries_mark_the_word_being_typed() {
        let q = SearchQuery::parse("Amul tom", &syn());
        assert_eq!(q.key(), "amul tom*");
        let q = SearchQuery::parse("amul tom ", &syn());
        assert_eq!(q.key(), "amul tom");
        let q = SearchQuery::parse("100%", &syn());
        assert_eq!(q.key(), "100");
        assert!(SearchQuery::parse("*** \"", &syn()).is_empty());
        let q = SearchQuery::parse("aata aata", &syn());
        assert_eq!(q.words.len(), 1);
        assert_eq!(q.words[0].synonyms, ["atta"]);
    }

    #[test]
    fn full_text_queries_quote_every_word() {
        let q = SearchQuery::parse("curd tomatoes ketch", &syn());
        assert_eq!(
            q.fts(Dialect::Sqlite, false),
            "(\"curd\" OR \"dahi\") AND (\"tomatoes\" OR \"tomato\" OR \"tamatar\") AND (\"ketch\"*)"
        );
        assert_eq!(
            q.fts(Dialect::Postgres, false),
            "('curd' | 'dahi') & ('tomatoes' | 'tomato' | 'tamatar') & ('ketch':*)"
        );
        assert_eq!(
            SearchQuery::parse("ketch", &syn()).fts(Dialect::Sqlite, true),
            "name : ((\"ketch\"*))"
        );
        assert_eq!(
            SearchQuery::parse("ketchup ", &syn()).fts(Dialect::Postgres, true),
            "('ketchup':A)"
        );
        // FTS operators typed by a shopper are plain (quoted) words.
        let q = SearchQuery::parse("NEAR OR AND NOT x", &Synonyms::default());
        assert_eq!(
            q.fts(Dialect::Sqlite, false),
            "(\"near\") AND (\"or\") AND (\"and\") AND (\"not\") AND (\"x\"*)"
        );
    }

    #[test]
    fn the_score_ranks_columns_then_how_the_word_matched() {
        let q = SearchQuery::parse("curd tom", &syn());
        let mut b = Binds::default();
        let s = score(&q, &mut b, &COLUMNS);
        assert_eq!(s.matches("CASE").count(), 2);
        assert_eq!(crate::listing::count_params(&s), b.0.len());
        let weights: Vec<i64> = s
            .split("THEN ")
            .skip(1)
            .map(|rest| rest.split(' ').next().unwrap().parse().unwrap())
            .collect();
        // curd: exact and synonym per column; tom: exact and prefix per column.
        assert_eq!(
            weights,
            [10000, 8000, 1000, 800, 100, 80, 10, 8, 10000, 9000, 1000, 900, 100, 90, 10, 9]
        );
        assert!(matches!(&b.0[0], Value::Text(t) if t == "% curd %"));
        assert!(b
            .0
            .iter()
            .any(|v| matches!(v, Value::Text(t) if t == "% tom%")));
    }
}
