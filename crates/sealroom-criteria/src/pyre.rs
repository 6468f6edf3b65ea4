//! Python `re` patterns, as Cerberus's `regex` rule uses them, run on the `regex` crate.
//!
//! Cerberus 1.3.8 appends `$` to a pattern that does not already end with `$` and calls
//! `re.compile(pattern).match(value)`: anchored at the start, and `$` (without `re.MULTILINE`)
//! matches at the end *or just before a final newline*. This module parses the pattern with
//! CPython 3.11's `re` grammar (`re/_parser.py`): what Python refuses is refused with Python's
//! reason, what Python accepts is translated into an equivalent `regex` pattern, and Python-only
//! features, which a finite automaton cannot run, are refused as unsupported: backreferences,
//! lookahead/lookbehind, conditionals, atomic groups, possessive quantifiers, `\N{NAME}`, the
//! `x` (verbose), `a` (ASCII) and `t` flags. A surrogate code point (`\ud800`), which no value
//! can contain, matches nothing.
//!
//! Python's `$` has no `regex` equivalent; [`PyRegex::is_match`] picks, per value, a translation
//! that is exact for it: `\z` when the value does not end with a newline, `(?m:$)` when its only
//! newline is the last character, and otherwise `\n?\z`, which differs from Python only when
//! pattern text after the `$` can itself match that final newline (as in `a$\n`).
//!
//! Every literal is emitted as `\x{HEX}`, so Rust's extra syntax (`[[:alpha:]]`, `&&`, `--`,
//! `\p{..}`) never applies. Character classes follow Python's definitions: `\s` adds
//! U+001C..U+001F to Unicode's White_Space, `\w` is letters, numbers and `_` (Python's
//! `isalnum()`), `\d` is decimal digits; they differ from Python only on code points that
//! Python's Unicode database (14.0 for 3.11) does not assign yet. `\b` keeps the `regex`
//! crate's word definition (which also counts combining marks as word characters).

use std::collections::HashMap;
use std::fmt::Write;

/// Why a pattern cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegexError {
    /// Python's `re.compile` refuses it too (the message is Python's).
    Python(String),
    /// Valid Python, but uses a feature Sealroom does not run.
    Unsupported(String),
    /// Over Sealroom's size limits for patterns.
    TooLarge(String),
}

impl std::fmt::Display for RegexError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegexError::Python(m) => write!(
                f,
                "invalid regular expression (Python's re refuses it: {m})"
            ),
            RegexError::Unsupported(m) => write!(f, "unsupported regular expression feature: {m}"),
            RegexError::TooLarge(m) => write!(f, "regular expression too large: {m}"),
        }
    }
}

/// Longest accepted pattern, in characters.
pub const MAX_PATTERN_CHARS: usize = 4096;
/// Deepest group nesting accepted (Python itself fails somewhere below 500).
pub const MAX_NESTING: usize = 100;
/// Compiled-program size limit per pattern (bytes, the `regex` crate's `size_limit`).
pub const COMPILED_SIZE_LIMIT: usize = 1 << 20;

/// A compiled Cerberus `regex` constraint.
#[derive(Debug, Clone)]
pub struct PyRegex {
    pattern: String,
    /// `$` as `\z`.
    re: regex::Regex,
    /// When the pattern has a non-multiline `$`: `$` as `(?m:$)` and as `(?:\n?\z)`.
    newline_variants: Option<Box<(regex::Regex, regex::Regex)>>,
}

fn build(translated: &str) -> Result<regex::Regex, RegexError> {
    regex::RegexBuilder::new(&format!("\\A(?:{translated})"))
        .size_limit(COMPILED_SIZE_LIMIT)
        .dfa_size_limit(COMPILED_SIZE_LIMIT)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(n) => {
                RegexError::TooLarge(format!("compiled form exceeds {n} bytes"))
            }
            other => {
                let text = other.to_string();
                if text.contains("nest") || text.contains("exceeds") || text.contains("too big") {
                    RegexError::TooLarge(last_line(&text))
                } else {
                    RegexError::Unsupported(last_line(&text))
                }
            }
        })
}

impl PyRegex {
    /// Compiles `pattern` as Cerberus's `regex` rule uses it.
    pub fn cerberus(pattern: &str) -> Result<Self, RegexError> {
        if pattern.chars().count() > MAX_PATTERN_CHARS {
            return Err(RegexError::TooLarge(format!(
                "more than {MAX_PATTERN_CHARS} characters"
            )));
        }
        let mut full = pattern.to_string();
        if !full.ends_with('$') {
            full.push('$');
        }
        let (translated, has_dollar) = translate_with(&full, Dollar::End)?;
        let re = build(&translated)?;
        let newline_variants = if has_dollar {
            let (m, _) = translate_with(&full, Dollar::Multiline)?;
            let (c, _) = translate_with(&full, Dollar::ConsumeNewline)?;
            Some(Box::new((build(&m)?, build(&c)?)))
        } else {
            None
        };
        Ok(Self {
            pattern: pattern.to_string(),
            re,
            newline_variants,
        })
    }

    /// The pattern as written in the criteria.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Python `re.compile(pattern).match(value) is not None` (with Cerberus's appended `$`).
    pub fn is_match(&self, value: &str) -> bool {
        match (&self.newline_variants, value.strip_suffix('\n')) {
            (Some(v), Some(body)) if !body.contains('\n') => v.0.is_match(value),
            (Some(v), Some(_)) => v.1.is_match(value),
            _ => self.re.is_match(value),
        }
    }
}

/// The last non-blank line of a `regex` error (its summary).
fn last_line(s: &str) -> String {
    s.lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or(s)
        .trim()
        .to_string()
}

const MAXREPEAT: u64 = 4_294_967_295;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Last {
    /// Nothing yet in this branch.
    Nothing,
    /// An anchor (`^ $ \A \Z \b \B`): Python refuses to repeat it.
    At,
    /// A repeat: repeating it again is "multiple repeat".
    Repeat,
    /// Anything else.
    Atom,
}

#[derive(Clone, Copy)]
enum ClassItem {
    Lit(u32),
    Cat(char),
}

struct Translator {
    src: Vec<char>,
    pos: usize,
    out: String,
    /// Python's `state.groups`: 1 + the number of capturing groups opened.
    groups: usize,
    closed: Vec<bool>,
    names: HashMap<String, usize>,
    /// How a `$` outside multiline mode is written (see [`Dollar`]).
    dollar: Dollar,
    /// Whether the pattern has such a `$`.
    saw_dollar: bool,
    /// The first Python-only feature met; reported once the whole pattern parsed (so that a
    /// pattern Python refuses is reported as refused by Python).
    deferred: Option<String>,
    /// Group numbers referenced by conditionals (checked at the end, as Python does).
    cond_refs: Vec<usize>,
}

/// Python's `$` (no MULTILINE) holds at the end and just before a final newline; `regex` has no
/// such assertion. Each form below is exact for some values (see [`PyRegex::is_match`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dollar {
    /// `\z`: exact for values that do not end with a newline.
    End,
    /// `(?m:$)`: exact for values whose only newline is the last character.
    Multiline,
    /// `(?:\n?\z)`: consumes the final newline; exact unless pattern text after the `$`
    /// can match that newline.
    ConsumeNewline,
}

type R<T> = Result<T, RegexError>;

fn py(msg: impl Into<String>) -> RegexError {
    RegexError::Python(msg.into())
}

fn unsupported(msg: impl Into<String>) -> RegexError {
    RegexError::Unsupported(msg.into())
}

/// Translates a complete Python pattern (exactly what `re.compile` sees) to `regex` syntax.
/// Returns the translation and whether it has a non-multiline `$`.
pub fn translate(pattern: &str) -> R<(String, bool)> {
    translate_with(pattern, Dollar::End)
}

fn translate_with(pattern: &str, dollar: Dollar) -> R<(String, bool)> {
    let mut t = Translator {
        src: pattern.chars().collect(),
        pos: 0,
        out: String::new(),
        groups: 1,
        closed: vec![true],
        names: HashMap::new(),
        dollar,
        saw_dollar: false,
        deferred: None,
        cond_refs: Vec::new(),
    };
    t.parse_sub(0, false)?;
    if t.pos < t.src.len() {
        return Err(py(format!("unbalanced parenthesis at position {}", t.pos)));
    }
    if let Some(g) = t.cond_refs.iter().find(|&&g| g >= t.groups) {
        return Err(py(format!("invalid group reference {g}")));
    }
    if let Some(what) = t.deferred {
        return Err(unsupported(what));
    }
    Ok((t.out, t.saw_dollar))
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c == '_' || unicode_ident::is_xid_start(c) => {}
        _ => return false,
    }
    chars.all(unicode_ident::is_xid_continue)
}

/// A literal character; a surrogate code point (Python allows `\\ud800`) matches nothing, since
/// values never contain one.
fn push_lit(out: &mut String, c: u32) {
    if (0xD800..0xE000).contains(&c) {
        out.push_str(NEVER);
    } else {
        let _ = write!(out, "\\x{{{c:X}}}");
    }
}

impl Translator {
    fn peek(&self) -> Option<char> {
        self.src.get(self.pos).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Python's `source.getuntil(terminator, name)`.
    fn get_until(&mut self, term: char, what: &str) -> R<String> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c == term {
                let name: String = self.src[start..self.pos].iter().collect();
                self.pos += 1;
                if name.is_empty() {
                    return Err(py(format!("missing {what}")));
                }
                return Ok(name);
            }
            self.pos += 1;
        }
        if self.pos == start {
            Err(py(format!("missing {what}")))
        } else {
            Err(py(format!("missing {term}, unterminated name")))
        }
    }

    /// `_parse_sub`: branches separated by `|`.
    fn parse_sub(&mut self, nested: usize, multiline: bool) -> R<()> {
        if nested > MAX_NESTING {
            return Err(RegexError::TooLarge(format!(
                "groups nested deeper than {MAX_NESTING}"
            )));
        }
        let mut first_branch = true;
        let mut multiline = multiline;
        loop {
            multiline = self.parse_branch(nested, nested == 0 && first_branch, multiline)?;
            first_branch = false;
            if self.eat('|') {
                self.out.push('|');
            } else {
                return Ok(());
            }
        }
    }

    /// `_parse`: one branch. Returns the multiline flag in force afterwards (global flags at the
    /// start of the pattern change it for the rest of the pattern).
    fn parse_branch(&mut self, nested: usize, first: bool, mut multiline: bool) -> R<bool> {
        let mut last = Last::Nothing;
        let mut empty = true;
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            self.pos += 1;
            match c {
                '\\' => {
                    last = self.escape(multiline)?;
                    empty = false;
                }
                '[' => {
                    self.class()?;
                    last = Last::Atom;
                    empty = false;
                }
                '*' | '+' | '?' | '{' => {
                    let (min, max): (u64, Option<u64>) = match c {
                        '*' => (0, None),
                        '+' => (1, None),
                        '?' => (0, Some(1)),
                        _ => {
                            let here = self.pos;
                            if self.peek() == Some('}') {
                                push_lit(&mut self.out, '{' as u32);
                                last = Last::Atom;
                                empty = false;
                                continue;
                            }
                            let mut lo = String::new();
                            while let Some(d @ '0'..='9') = self.peek() {
                                lo.push(d);
                                self.pos += 1;
                            }
                            let hi = if self.eat(',') {
                                let mut hi = String::new();
                                while let Some(d @ '0'..='9') = self.peek() {
                                    hi.push(d);
                                    self.pos += 1;
                                }
                                hi
                            } else {
                                lo.clone()
                            };
                            if !self.eat('}') {
                                push_lit(&mut self.out, '{' as u32);
                                self.pos = here;
                                last = Last::Atom;
                                empty = false;
                                continue;
                            }
                            let parse = |s: &str| -> R<u64> {
                                let v = s.parse::<u64>().unwrap_or(u64::MAX);
                                if v >= MAXREPEAT {
                                    Err(py("the repetition number is too large"))
                                } else {
                                    Ok(v)
                                }
                            };
                            let min = if lo.is_empty() { 0 } else { parse(&lo)? };
                            let max = if hi.is_empty() {
                                None
                            } else {
                                Some(parse(&hi)?)
                            };
                            if let Some(m) = max {
                                if m < min {
                                    return Err(py("min repeat greater than max repeat"));
                                }
                            }
                            (min, max)
                        }
                    };
                    match last {
                        Last::Nothing | Last::At => return Err(py("nothing to repeat")),
                        Last::Repeat => return Err(py("multiple repeat")),
                        Last::Atom => {}
                    }
                    match (min, max) {
                        (0, None) => self.out.push('*'),
                        (1, None) => self.out.push('+'),
                        (0, Some(1)) => self.out.push('?'),
                        (m, None) => {
                            let _ = write!(self.out, "{{{m},}}");
                        }
                        (m, Some(n)) if m == n => {
                            let _ = write!(self.out, "{{{m}}}");
                        }
                        (m, Some(n)) => {
                            let _ = write!(self.out, "{{{m},{n}}}");
                        }
                    }
                    if self.eat('?') {
                        self.out.push('?');
                    } else if self.eat('+') {
                        self.defer("possessive quantifiers (*+, ++, ?+, {m,n}+)");
                    }
                    last = Last::Repeat;
                }
                '.' => {
                    self.out.push('.');
                    last = Last::Atom;
                    empty = false;
                }
                '^' => {
                    self.out.push_str(if multiline { "(?m:^)" } else { "\\A" });
                    last = Last::At;
                    empty = false;
                }
                '$' => {
                    if multiline {
                        self.out.push_str("(?m:$)");
                    } else {
                        self.saw_dollar = true;
                        self.out.push_str(match self.dollar {
                            Dollar::End => "\\z",
                            Dollar::Multiline => "(?m:$)",
                            Dollar::ConsumeNewline => "(?:\\n?\\z)",
                        });
                    }
                    last = Last::At;
                    empty = false;
                }
                '(' => match self.group(nested, first && empty, multiline)? {
                    GroupOutcome::Emitted => {
                        last = Last::Atom;
                        empty = false;
                    }
                    GroupOutcome::Comment => {}
                    GroupOutcome::GlobalFlags { multiline: m } => multiline = m,
                },
                other => {
                    push_lit(&mut self.out, other as u32);
                    last = Last::Atom;
                    empty = false;
                }
            }
        }
        Ok(multiline)
    }

    fn group(&mut self, nested: usize, at_start: bool, multiline: bool) -> R<GroupOutcome> {
        let mut capture = true;
        let mut name = None;
        let mut prefix = String::from("(?:");
        let mut inner_multiline = multiline;
        if self.eat('?') {
            let Some(c) = self.peek() else {
                return Err(py("unexpected end of pattern"));
            };
            self.pos += 1;
            match c {
                'P' => {
                    if self.eat('<') {
                        let n = self.get_until('>', "group name")?;
                        if !is_identifier(&n) {
                            return Err(py(format!("bad character in group name {n:?}")));
                        }
                        name = Some(n);
                    } else if self.eat('=') {
                        let n = self.get_until(')', "group name")?;
                        if !is_identifier(&n) {
                            return Err(py(format!("bad character in group name {n:?}")));
                        }
                        return match self.names.get(&n) {
                            None => Err(py(format!("unknown group name {n:?}"))),
                            Some(&gid) if !self.closed[gid] => {
                                Err(py("cannot refer to an open group"))
                            }
                            Some(_) => {
                                self.defer("backreferences ((?P=name))");
                                self.out.push_str("(?:)");
                                Ok(GroupOutcome::Emitted)
                            }
                        };
                    } else {
                        return match self.peek() {
                            None => Err(py("unexpected end of pattern")),
                            Some(c) => Err(py(format!("unknown extension ?P{c}"))),
                        };
                    }
                }
                ':' => capture = false,
                '#' => {
                    loop {
                        match self.peek() {
                            None => return Err(py("missing ), unterminated comment")),
                            Some(')') => {
                                self.pos += 1;
                                break;
                            }
                            Some(_) => self.pos += 1,
                        }
                    }
                    return Ok(GroupOutcome::Comment);
                }
                '=' | '!' => {
                    self.defer("lookahead assertions ((?=...), (?!...))");
                    return self.skip_group(nested, multiline);
                }
                '<' => {
                    return match self.peek() {
                        None => Err(py("unexpected end of pattern")),
                        Some('=' | '!') => {
                            self.pos += 1;
                            self.defer("lookbehind assertions ((?<=...), (?<!...))");
                            self.skip_group(nested, multiline)
                        }
                        Some(c) => Err(py(format!("unknown extension ?<{c}"))),
                    };
                }
                '(' => return self.conditional(nested, multiline),
                '>' => {
                    self.defer("atomic groups ((?>...))");
                    return self.skip_group(nested, multiline);
                }
                c if "iLmsxatu-".contains(c) => {
                    let (add, del, global) = self.flags(c)?;
                    if add.contains('x') || del.contains('x') {
                        // Verbose mode changes how the rest parses: refuse at once.
                        return Err(unsupported("the x (verbose) flag"));
                    }
                    for (f, what) in [('a', "the a (ASCII) flag"), ('t', "the t flag")] {
                        if add.contains(f) || del.contains(f) {
                            self.defer(what);
                        }
                    }
                    let rust_flags = |s: &str| {
                        s.chars()
                            .filter(|c| matches!(c, 'i' | 's'))
                            .collect::<String>()
                    };
                    if global {
                        if !at_start {
                            return Err(py("global flags not at the start of the expression"));
                        }
                        let f = rust_flags(&add);
                        if !f.is_empty() {
                            let _ = write!(self.out, "(?{f})");
                        }
                        return Ok(GroupOutcome::GlobalFlags {
                            multiline: multiline || add.contains('m'),
                        });
                    }
                    let (a, d) = (rust_flags(&add), rust_flags(&del));
                    prefix = match (a.is_empty(), d.is_empty()) {
                        (true, true) => "(?:".into(),
                        (false, true) => format!("(?{a}:"),
                        (true, false) => format!("(?-{d}:"),
                        (false, false) => format!("(?{a}-{d}:"),
                    };
                    if add.contains('m') {
                        inner_multiline = true;
                    }
                    if del.contains('m') {
                        inner_multiline = false;
                    }
                    capture = false;
                }
                c => return Err(py(format!("unknown extension ?{c}"))),
            }
        }
        let gid = if capture {
            let gid = self.groups;
            self.groups += 1;
            self.closed.push(false);
            if let Some(n) = name {
                if let Some(old) = self.names.get(&n) {
                    return Err(py(format!(
                        "redefinition of group name {n:?} as group {gid}; was group {old}"
                    )));
                }
                self.names.insert(n, gid);
            }
            Some(gid)
        } else {
            None
        };
        self.out.push_str(&prefix);
        self.parse_sub(nested + 1, inner_multiline)?;
        if !self.eat(')') {
            return Err(py("missing ), unterminated subpattern"));
        }
        self.out.push(')');
        if let Some(g) = gid {
            self.closed[g] = true;
        }
        Ok(GroupOutcome::Emitted)
    }

    /// `_parse_flags`, after `(?` and its first character `c`. Returns (added, removed, global).
    fn flags(&mut self, first: char) -> R<(String, String, bool)> {
        const FLAGS: &str = "iLmsxatu";
        let mut add = String::new();
        let mut del = String::new();
        let mut c = first;
        if c != '-' {
            loop {
                if c == 'L' {
                    return Err(py(
                        "bad inline flags: cannot use 'L' flag with a str pattern",
                    ));
                }
                add.push(c);
                if add.contains('a') && add.contains('u') {
                    return Err(py(
                        "bad inline flags: flags 'a', 'u' and 'L' are incompatible",
                    ));
                }
                let Some(n) = self.peek() else {
                    return Err(py("missing -, : or )"));
                };
                self.pos += 1;
                c = n;
                if ")-:".contains(c) {
                    break;
                }
                if !FLAGS.contains(c) {
                    return Err(py(if c.is_alphabetic() {
                        "unknown flag"
                    } else {
                        "missing -, : or )"
                    }));
                }
            }
        }
        if c == ')' {
            return Ok((add, del, true));
        }
        if add.contains('t') {
            return Err(py("bad inline flags: cannot turn on global flag"));
        }
        if c == '-' {
            let Some(n) = self.peek() else {
                return Err(py("missing flag"));
            };
            self.pos += 1;
            c = n;
            if !FLAGS.contains(c) {
                return Err(py(if c.is_alphabetic() {
                    "unknown flag"
                } else {
                    "missing flag"
                }));
            }
            loop {
                if "auL".contains(c) {
                    return Err(py(
                        "bad inline flags: cannot turn off flags 'a', 'u' and 'L'",
                    ));
                }
                del.push(c);
                let Some(n) = self.peek() else {
                    return Err(py("missing :"));
                };
                self.pos += 1;
                c = n;
                if c == ':' {
                    break;
                }
                if !FLAGS.contains(c) {
                    return Err(py(if c.is_alphabetic() {
                        "unknown flag"
                    } else {
                        "missing :"
                    }));
                }
            }
        }
        if del.contains('t') {
            return Err(py("bad inline flags: cannot turn off global flag"));
        }
        if add.chars().any(|f| del.contains(f)) {
            return Err(py("bad inline flags: flag turned on and off"));
        }
        Ok((add, del, false))
    }

    fn hex_digits(&mut self, n: usize, esc: &str) -> R<u32> {
        let mut v = 0u32;
        for i in 0..n {
            match self.peek().and_then(|c| c.to_digit(16)) {
                Some(d) => {
                    v = v * 16 + d;
                    self.pos += 1;
                }
                None => {
                    let got: String = self.src[self.pos - i..self.pos].iter().collect();
                    return Err(py(format!("incomplete escape {esc}{got}")));
                }
            }
        }
        Ok(v)
    }

    /// The character escapes common to classes and the rest: returns the code point, or `None`
    /// when `c` is not one of them.
    fn char_escape(&mut self, c: char) -> R<Option<u32>> {
        Ok(Some(match c {
            'a' => 7,
            'f' => 0xc,
            'n' => 0xa,
            'r' => 0xd,
            't' => 9,
            'v' => 0xb,
            '\\' => '\\' as u32,
            'x' => self.hex_digits(2, "\\x")?,
            'u' => self.hex_digits(4, "\\u")?,
            'U' => {
                let v = self.hex_digits(8, "\\U")?;
                if v > 0x10FFFF {
                    return Err(py(format!("bad escape \\U{v:08x}")));
                }
                v
            }
            'N' => {
                if !self.eat('{') {
                    return Err(py("missing {"));
                }
                self.get_until('}', "character name")?;
                self.defer("named Unicode escapes (\\N{...})");
                0xFFFD
            }
            _ => return Ok(None),
        }))
    }

    fn defer(&mut self, what: &str) {
        if self.deferred.is_none() {
            self.deferred = Some(what.to_string());
        }
    }

    /// Parses the rest of a group that Sealroom cannot run, only to find Python's errors.
    fn skip_group(&mut self, nested: usize, multiline: bool) -> R<GroupOutcome> {
        self.out.push_str("(?:");
        self.parse_sub(nested + 1, multiline)?;
        if !self.eat(')') {
            return Err(py("missing ), unterminated subpattern"));
        }
        self.out.push(')');
        Ok(GroupOutcome::Emitted)
    }

    /// `(?(id/name)yes|no)`, after `(?(`.
    fn conditional(&mut self, nested: usize, multiline: bool) -> R<GroupOutcome> {
        let cond = self.get_until(')', "group name")?;
        if is_identifier(&cond) {
            if !self.names.contains_key(&cond) {
                return Err(py(format!("unknown group name {cond:?}")));
            }
        } else {
            let Ok(g) = cond.parse::<usize>() else {
                return Err(py(format!("bad character in group name {cond:?}")));
            };
            if g == 0 {
                return Err(py("bad group number"));
            }
            self.cond_refs.push(g);
        }
        self.defer("conditional groups ((?(id)yes|no))");
        self.out.push_str("(?:");
        self.parse_branch(nested + 1, false, multiline)?;
        if self.eat('|') {
            self.parse_branch(nested + 1, false, multiline)?;
            if self.peek() == Some('|') {
                return Err(py("conditional backref with more than two branches"));
            }
        }
        if !self.eat(')') {
            return Err(py("missing ), unterminated subpattern"));
        }
        self.out.push(')');
        Ok(GroupOutcome::Emitted)
    }

    /// `_escape`, after a backslash outside a class.
    fn escape(&mut self, _multiline: bool) -> R<Last> {
        let Some(c) = self.peek() else {
            return Err(py("bad escape (end of pattern)"));
        };
        self.pos += 1;
        match c {
            'A' => {
                self.out.push_str("\\A");
                return Ok(Last::At);
            }
            'Z' => {
                self.out.push_str("\\z");
                return Ok(Last::At);
            }
            'b' => {
                self.out.push_str("\\b");
                return Ok(Last::At);
            }
            'B' => {
                self.out.push_str("\\B");
                return Ok(Last::At);
            }
            'd' | 'D' => {
                self.out.push('\\');
                self.out.push(c);
                return Ok(Last::Atom);
            }
            'w' => {
                self.out.push_str(WORD);
                return Ok(Last::Atom);
            }
            'W' => {
                self.out.push_str(NOT_WORD);
                return Ok(Last::Atom);
            }
            's' => {
                self.out.push_str("[\\s\\x{1C}-\\x{1F}]");
                return Ok(Last::Atom);
            }
            'S' => {
                self.out.push_str("[^\\s\\x{1C}-\\x{1F}]");
                return Ok(Last::Atom);
            }
            _ => {}
        }
        if let Some(v) = self.char_escape(c)? {
            push_lit(&mut self.out, v);
            return Ok(Last::Atom);
        }
        if c == '0' {
            let mut v = 0u32;
            for _ in 0..2 {
                match self.peek().and_then(|d| d.to_digit(8)) {
                    Some(d) => {
                        v = v * 8 + d;
                        self.pos += 1;
                    }
                    None => break,
                }
            }
            push_lit(&mut self.out, v);
            return Ok(Last::Atom);
        }
        if let Some(d1) = c.to_digit(10) {
            let mut digits = vec![d1];
            if let Some(d2) = self.peek().and_then(|d| d.to_digit(10)) {
                self.pos += 1;
                digits.push(d2);
                if d1 < 8 && d2 < 8 {
                    if let Some(d3) = self.peek().and_then(|d| d.to_digit(8)) {
                        self.pos += 1;
                        let v = d1 * 64 + d2 * 8 + d3;
                        if v > 0o377 {
                            return Err(py(format!(
                                "octal escape value \\{d1}{d2}{d3} outside of range 0-0o377"
                            )));
                        }
                        push_lit(&mut self.out, v);
                        return Ok(Last::Atom);
                    }
                }
            }
            let group = digits.iter().fold(0usize, |a, d| a * 10 + *d as usize);
            if group < self.groups {
                if !self.closed[group] {
                    return Err(py("cannot refer to an open group"));
                }
                self.defer("backreferences (\\1 ...)");
                self.out.push_str("(?:)");
                return Ok(Last::Atom);
            }
            return Err(py(format!("invalid group reference {group}")));
        }
        if c.is_ascii_alphabetic() {
            return Err(py(format!("bad escape \\{c}")));
        }
        push_lit(&mut self.out, c as u32);
        Ok(Last::Atom)
    }

    /// `_class_escape`, after a backslash inside a class.
    fn class_escape(&mut self) -> R<ClassItem> {
        let Some(c) = self.peek() else {
            return Err(py("bad escape (end of pattern)"));
        };
        self.pos += 1;
        if c == 'b' {
            return Ok(ClassItem::Lit(8));
        }
        if let Some(v) = self.char_escape(c)? {
            return Ok(ClassItem::Lit(v));
        }
        if "dDsSwW".contains(c) {
            return Ok(ClassItem::Cat(c));
        }
        if let Some(d1) = c.to_digit(8) {
            let mut v = d1;
            for _ in 0..2 {
                match self.peek().and_then(|d| d.to_digit(8)) {
                    Some(d) => {
                        v = v * 8 + d;
                        self.pos += 1;
                    }
                    None => break,
                }
            }
            if v > 0o377 {
                return Err(py("octal escape value outside of range 0-0o377"));
            }
            return Ok(ClassItem::Lit(v));
        }
        if c.is_ascii_alphanumeric() {
            return Err(py(format!("bad escape \\{c}")));
        }
        Ok(ClassItem::Lit(c as u32))
    }

    fn class(&mut self) -> R<()> {
        let negate = self.eat('^');
        let mut items: Vec<String> = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(py("unterminated character set"));
            };
            self.pos += 1;
            if c == ']' && !items.is_empty() {
                break;
            }
            let code1 = if c == '\\' {
                self.class_escape()?
            } else {
                ClassItem::Lit(c as u32)
            };
            if self.eat('-') {
                let Some(that) = self.peek() else {
                    return Err(py("unterminated character set"));
                };
                self.pos += 1;
                if that == ']' {
                    items.push(class_item(code1));
                    items.push(class_item(ClassItem::Lit('-' as u32)));
                    break;
                }
                let code2 = if that == '\\' {
                    self.class_escape()?
                } else {
                    ClassItem::Lit(that as u32)
                };
                match (code1, code2) {
                    (ClassItem::Lit(lo), ClassItem::Lit(hi)) => {
                        if hi < lo {
                            return Err(py("bad character range"));
                        }
                        // Surrogates never occur in values: clip them off the range.
                        let lo = if (0xD800..0xE000).contains(&lo) {
                            0xE000
                        } else {
                            lo
                        };
                        let hi = if (0xD800..0xE000).contains(&hi) {
                            0xD7FF
                        } else {
                            hi
                        };
                        if lo <= hi {
                            items.push(format!("\\x{{{lo:X}}}-\\x{{{hi:X}}}"));
                        }
                    }
                    _ => return Err(py("bad character range")),
                }
            } else {
                items.push(class_item(code1));
            }
        }
        items.retain(|i| !i.is_empty());
        if items.is_empty() {
            // Only surrogates: nothing (or, negated, anything) matches.
            self.out.push_str(if negate {
                "[\\x{0}-\\x{10FFFF}]"
            } else {
                NEVER
            });
            return Ok(());
        }
        self.out.push('[');
        if negate {
            self.out.push('^');
        }
        for i in items {
            self.out.push_str(&i);
        }
        self.out.push(']');
        Ok(())
    }
}

/// Python's `\\w` on `str`: `ch.isalnum() or ch == "_"`, that is letters, numbers (including
/// `No`, like `²`, which Rust's `\\w` lacks) and `_`, but not the combining marks Rust adds.
const WORD: &str = "[\\p{L}\\p{N}_]";
const NOT_WORD: &str = "[^\\p{L}\\p{N}_]";

/// A class that matches no character.
const NEVER: &str = "[^\\x{0}-\\x{10FFFF}]";

fn class_item(item: ClassItem) -> String {
    match item {
        ClassItem::Lit(v) if (0xD800..0xE000).contains(&v) => String::new(),
        ClassItem::Lit(v) => format!("\\x{{{v:X}}}"),
        ClassItem::Cat('s') => "\\s\\x{1C}-\\x{1F}".into(),
        ClassItem::Cat('S') => "[^\\s\\x{1C}-\\x{1F}]".into(),
        ClassItem::Cat('w') => "\\p{L}\\p{N}_".into(),
        ClassItem::Cat('W') => NOT_WORD.into(),
        ClassItem::Cat(c) => format!("\\{c}"),
    }
}

enum GroupOutcome {
    Emitted,
    Comment,
    GlobalFlags { multiline: bool },
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        PyRegex::cerberus(p).unwrap().is_match(s)
    }

    #[test]
    fn cerberus_match_semantics() {
        assert!(m("a+", "aaa"));
        assert!(!m("a+", "aab"));
        assert!(m("a+", "aa\n"), "$ matches before a final newline");
        assert!(!m("a+", "aa\n\n"));
        assert!(m("a|b", "a"));
        assert!(m("a|b", "ab"), "re.match('a|b$') matches the 'a' prefix");
        assert!(!m("b|a", "ab"));
        assert!(m("a|b$", "ax"), "the appended $ binds to the last branch");
        assert!(
            m("a\\$", "a$zzz"),
            "a pattern ending in an escaped $ gets no anchor"
        );
        assert!(m("[$]", "$"));
        assert!(m("x{,2}", "xx"));
        assert!(m("x{", "x{"));
        assert!(m("{}", "{}"));
        assert!(m("\\d{3}-\\w+", "123-abc_é"));
        assert!(m("(?i)abc", "ABC"));
        assert!(m("[]a]+", "]a]"));
        assert!(m("[\\s]+", "\u{1c} \t"));
        assert!(m("(?m)a$\\nb", "a\nb"));
        assert!(m("a\\Z", "a"));
        assert!(!m("a\\Z", "a\n"));
        assert!(m("(?P<x>a)(?#comment)b", "ab"));
        assert!(m("[&&]+[--]", "&&-"));
        assert!(m("\\0101", "\u{8}1"));
        assert!(m("\\101", "A"));
    }

    #[test]
    fn python_refusals() {
        for p in [
            "(",
            ")",
            "[a",
            "*a",
            "a**",
            "^*",
            "\\q",
            "a{3,2}",
            "(?i",
            "a(?i)",
            "(?P<1>a)",
            "\\1",
            "(a)\\2",
            "(?L)a",
            "(?<x)",
            "[b-a]",
            "[\\d-z]",
            "\\x4",
            "(?P<a>x)(?P<a>y)",
            "(?z)",
        ] {
            match PyRegex::cerberus(p) {
                Err(RegexError::Python(_)) => {}
                other => panic!("{p:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn unsupported_features() {
        for p in [
            "(a)\\1",
            "(?=a)",
            "(?<=a)b",
            "(?>a)",
            "a*+",
            "(?x)a b",
            "(?a)\\w",
            "\\N{EM DASH}",
            "(?P<n>a)(?P=n)",
            "(a)(?(1)b|c)",
        ] {
            match PyRegex::cerberus(p) {
                Err(RegexError::Unsupported(_)) => {}
                other => panic!("{p:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn size_limits() {
        assert!(matches!(
            PyRegex::cerberus(&"a".repeat(5000)),
            Err(RegexError::TooLarge(_))
        ));
        assert!(matches!(
            PyRegex::cerberus(&format!("{}a{}", "(".repeat(150), ")".repeat(150))),
            Err(RegexError::TooLarge(_))
        ));
        assert!(matches!(
            PyRegex::cerberus("(\\w{1000}){1000}"),
            Err(RegexError::TooLarge(_))
        ));
    }
}
