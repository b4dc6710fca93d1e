//! Tests of the matcher and the configuration parser.

use std::format;
use std::string::{String as StdString, ToString};
use std::vec::Vec as StdVec;

use proptest::prelude::*;

use super::*;

// ---------------------------------------------------------------------------
// A reference matcher: tokenize, then dynamic programming over
// (pattern token, text char). Obviously correct, quadratic memory; written
// independently of `pattern.rs`.

#[derive(Debug, Clone, Copy, PartialEq)]
enum RefToken {
    Star,
    Lit(char),
    Never,
}

fn ref_tokens(pattern: &str) -> StdVec<RefToken> {
    let chars: StdVec<char> = pattern.chars().collect();
    let mut out = StdVec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => out.push(RefToken::Star),
            '\\' if i + 1 < chars.len() => {
                i += 1;
                out.push(RefToken::Lit(chars[i]));
            }
            '\\' => out.push(RefToken::Never),
            c => out.push(RefToken::Lit(c)),
        }
        i += 1;
    }
    out
}

fn reference(pattern: &str, text: &str) -> bool {
    let p = ref_tokens(pattern);
    let t: StdVec<char> = text.chars().collect();
    // dp[i][j]: p[i..] matches t[j..]
    let mut dp = std::vec![std::vec![false; t.len() + 1]; p.len() + 1];
    dp[p.len()][t.len()] = true;
    for i in (0..p.len()).rev() {
        for j in (0..=t.len()).rev() {
            dp[i][j] = match p[i] {
                RefToken::Star => dp[i + 1][j] || (j < t.len() && dp[i][j + 1]),
                RefToken::Lit(c) => j < t.len() && t[j] == c && dp[i + 1][j + 1],
                RefToken::Never => false,
            };
        }
    }
    dp[0][0]
}

/// Escapes every special character of `text`, giving a pattern that matches
/// exactly `text`.
fn escape(text: &str) -> StdString {
    let mut out = StdString::new();
    for c in text.chars() {
        if c == '*' || c == '\\' || c == ' ' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

// ---------------------------------------------------------------------------
// Matcher

#[test]
fn empty_pattern_matches_only_empty_text() {
    assert!(matches("", ""));
    assert!(!matches("", "a"));
    assert!(!matches("", " "));
}

#[test]
fn star_matches_everything() {
    for text in ["", "a", "pos-1", "héllo wörld", "*", "\\"] {
        assert!(matches("*", text), "{text:?}");
        assert!(matches("**", text), "{text:?}");
        assert!(matches("***", text), "{text:?}");
    }
}

#[test]
fn literals_match_exactly() {
    assert!(matches("payment", "payment"));
    assert!(!matches("payment", "payments"));
    assert!(!matches("payment", "paymen"));
    assert!(!matches("payment", ""));
    assert!(!matches("", "payment"));
}

#[test]
fn star_prefix_suffix_infix() {
    assert!(matches("pos-*", "pos-"));
    assert!(matches("pos-*", "pos-17"));
    assert!(!matches("pos-*", "pos"));
    assert!(!matches("pos-*", "xpos-1"));
    assert!(matches("*-ack", "payment-ack"));
    assert!(!matches("*-ack", "payment-ack2"));
    assert!(matches("a*b*c", "abc"));
    assert!(matches("a*b*c", "aXXbYYc"));
    assert!(matches("a*b*c", "abcbc"));
    assert!(!matches("a*b*c", "acb"));
    assert!(matches("*ab", "aab"));
    assert!(matches("*aab", "aaab"));
    assert!(!matches("a*a", "a"));
    assert!(matches("a*a", "aa"));
}

#[test]
fn escapes_make_characters_literal() {
    assert!(matches("\\a", "a"));
    assert!(!matches("\\a", "\\a"));
    assert!(matches("\\\\", "\\"));
    assert!(!matches("\\\\", "\\\\"));
    assert!(matches("\\\\*", "\\anything"));
    assert!(matches("\\ ", " "));
    assert!(matches("my\\ app", "my app"));
}

#[test]
fn escaped_star_matches_only_a_star() {
    assert!(matches("\\*", "*"));
    assert!(!matches("\\*", ""));
    assert!(!matches("\\*", "x"));
    assert!(!matches("\\*", "**"));
    assert!(matches("status\\*", "status*"));
    assert!(!matches("status\\*", "status"));
    assert!(!matches("status\\*", "status-1"));
    assert!(matches("a\\*b", "a*b"));
    assert!(!matches("a\\*b", "axb"));
    assert!(matches("*\\**", "x*y"));
    assert!(!matches("*\\**", "xy"));
}

#[test]
fn dangling_escape_matches_nothing() {
    for text in ["", "a", "a\\", "\\", "ab", "abc\\"] {
        assert!(!matches("\\", text), "{text:?}");
        assert!(!matches("a\\", text), "{text:?}");
        assert!(!matches("*\\", text), "{text:?}");
        assert!(!matches("**\\", text), "{text:?}");
    }
    // An even run of backslashes is not dangling.
    assert!(matches("a\\\\", "a\\"));
    // Odd run: dangling.
    assert!(!matches("a\\\\\\", "a\\"));
    assert!(!matches("a\\\\\\", "a\\\\"));
}

#[test]
fn utf8_is_matched_per_character() {
    assert!(matches("h*o", "héllo"));
    assert!(matches("caf*", "café"));
    assert!(matches("*é", "café"));
    assert!(matches("caf\\é", "café"));
    assert!(!matches("cafe", "café"));
    assert!(!matches("café", "cafe"));
    assert!(matches("*€*", "1€"));
    assert!(matches("🦀*🦀", "🦀🦀"));
    assert!(matches("🦀*🦀", "🦀x🦀"));
    assert!(!matches("🦀*🦀", "🦀"));
    // é precomposed vs e + combining accent: different texts.
    assert!(!matches("caf\u{e9}", "cafe\u{301}"));
}

#[test]
fn matching_is_case_sensitive() {
    assert!(!matches("Pos-*", "pos-1"));
    assert!(!matches("pos-*", "POS-1"));
    assert!(!matches("payment", "Payment"));
    assert!(!matches("*É", "café"));
}

#[test]
fn pathological_pattern_is_not_exponential() {
    // A backtracking matcher needs ~n^6 / 6! steps here; two-pointer needs
    // ~n * 14. Exponential behaviour would never finish this test.
    let long_a: StdString = "a".repeat(20_000);
    assert!(!matches("*a*a*a*a*a*a*b", &long_a));
    let with_b = format!("{long_a}b");
    assert!(matches("*a*a*a*a*a*a*b", &with_b));
    let many: StdString = "*a".repeat(60) + "*b";
    assert!(!matches(&many, &long_a));
    assert!(matches(&many, &with_b));
}

proptest! {
    #[test]
    fn matcher_agrees_with_reference(
        pattern in "[ab*\\\\é]{0,12}",
        text in "[ab*\\\\é]{0,14}",
    ) {
        prop_assert_eq!(matches(&pattern, &text), reference(&pattern, &text));
    }

    #[test]
    fn matcher_agrees_with_reference_star_heavy(
        pattern in "[a*]{0,16}b?",
        text in "[ab]{0,20}",
    ) {
        prop_assert_eq!(matches(&pattern, &text), reference(&pattern, &text));
    }

    #[test]
    fn escaped_text_matches_itself_only(text in "[ab*\\\\ é]{0,12}", other in "[ab*\\\\ é]{0,12}") {
        let p = escape(&text);
        prop_assert!(matches(&p, &text));
        prop_assert_eq!(matches(&p, &other), text == other);
        let star_around = format!("*{p}*");
        let surrounded = format!("{other}{text}{other}");
        prop_assert!(matches(&star_around, &surrounded));
    }

    #[test]
    fn matcher_never_panics(pattern in any::<StdString>(), text in any::<StdString>()) {
        let _ = matches(&pattern, &text);
    }
}

// ---------------------------------------------------------------------------
// Pattern

#[test]
fn pattern_new_validates() {
    assert_eq!(Pattern::new("pos-*").unwrap().as_str(), "pos-*");
    assert_eq!(Pattern::new("status\\*").unwrap().as_str(), "status\\*");
    assert_eq!(Pattern::new(""), Err(ConfigErrorKind::EmptyPattern));
    assert_eq!(Pattern::new("a\\"), Err(ConfigErrorKind::DanglingEscape));
    assert_eq!(Pattern::new("a\tb"), Err(ConfigErrorKind::ControlChar));
    assert_eq!(Pattern::new("a\0"), Err(ConfigErrorKind::ControlChar));
    let max = "x".repeat(MAX_PATTERN_LEN);
    assert_eq!(Pattern::new(&max).unwrap().as_str(), max);
    let over = "x".repeat(MAX_PATTERN_LEN + 1);
    assert_eq!(Pattern::new(&over), Err(ConfigErrorKind::TooLong));
    // A 64-byte ID fully escaped and starred fits.
    let id_escaped = format!("*{}*", "\\*".repeat(64));
    assert!(Pattern::new(&id_escaped).is_ok());
    let p: Pattern = "a*".parse().unwrap();
    assert!(p.matches("abc"));
    assert!(!p.matches("bc"));
}

// ---------------------------------------------------------------------------
// Parser

type Wl = Whitelist<16, 4>;

const EXAMPLE: &str = "\
# nfy whitelist example
# remote POS may ask the payment app to start a transaction
in  pos-*   payment  start-transaction
in  pos-*   1        status\\*
out *       pos-*    *
out payment *        receipt

interface eth0
interface 192.168.7.2
";

fn rule(direction: Direction, from: &str, to: &str, notification: &str) -> Rule {
    Rule {
        direction,
        from: Pattern::new(from).unwrap(),
        to: Pattern::new(to).unwrap(),
        notification: Pattern::new(notification).unwrap(),
    }
}

fn name(n: &str) -> Interface {
    Interface::Name(heapless::String::try_from(n).unwrap())
}

fn err(text: &[u8]) -> ConfigError {
    Wl::parse(text).unwrap_err()
}

fn kind_at(line: usize, kind: ConfigErrorKind) -> ConfigError {
    ConfigError { line, kind }
}

#[test]
fn parses_the_example() {
    let wl = Wl::parse(EXAMPLE.as_bytes()).unwrap();
    assert!(wl.has_rules());
    assert_eq!(
        wl.rules(),
        &[
            rule(Direction::In, "pos-*", "payment", "start-transaction"),
            rule(Direction::In, "pos-*", "1", "status\\*"),
            rule(Direction::Out, "*", "pos-*", "*"),
            rule(Direction::Out, "payment", "*", "receipt"),
        ]
    );
    assert_eq!(
        wl.interfaces(),
        &[
            name("eth0"),
            Interface::Ip(core::net::IpAddr::V4(core::net::Ipv4Addr::new(
                192, 168, 7, 2
            ))),
        ]
    );
}

#[test]
fn example_allows_in() {
    let wl = Wl::parse(EXAMPLE.as_bytes()).unwrap();
    assert!(wl.allows_in("pos-1", "payment", "start-transaction"));
    assert!(wl.allows_in("pos-", "payment", "start-transaction"));
    assert!(!wl.allows_in("pos-1", "payment", "start-transaction2"));
    assert!(!wl.allows_in("pos-1", "Payment", "start-transaction"));
    assert!(!wl.allows_in("POS-1", "payment", "start-transaction"));
    assert!(!wl.allows_in("pos-1", "*", "start-transaction"));
    assert!(!wl.allows_in("pos-1", "1", "start-transaction"));
    assert!(wl.allows_in("pos-2", "1", "status*"));
    assert!(!wl.allows_in("pos-2", "1", "status"));
    assert!(!wl.allows_in("pos-2", "1", "status-x"));
    assert!(!wl.allows_in("pos-2", "payment", "status*"));
    // `out` rules do not allow anything in.
    assert!(!wl.allows_in("payment", "pos-1", "receipt"));
    assert!(!wl.allows_in("x", "pos-1", "anything"));
}

#[test]
fn example_allows_out() {
    let wl = Wl::parse(EXAMPLE.as_bytes()).unwrap();
    assert!(wl.allows_out("anyone", "pos-7", "anything"));
    assert!(wl.allows_out("payment", "*", "receipt"));
    assert!(wl.allows_out("payment", "1", "receipt"));
    assert!(!wl.allows_out("payment", "1", "receipts"));
    assert!(!wl.allows_out("other", "1", "receipt"));
    assert!(!wl.allows_out("other", "*", "anything"));
    // `in` rules do not allow anything out.
    assert!(!wl.allows_out("pos-1", "payment", "start-transaction"));
}

#[test]
fn empty_whitelist_allows_nothing() {
    for wl in [
        Wl::new(),
        Wl::default(),
        Wl::parse(b"").unwrap(),
        Wl::parse(b"# only a comment\n\n   \n\t\n").unwrap(),
        Wl::parse(b"interface eth0\n").unwrap(),
    ] {
        assert!(!wl.has_rules());
        assert!(wl.rules().is_empty());
        assert!(!wl.allows_in("a", "b", "c"));
        assert!(!wl.allows_out("a", "b", "c"));
    }
    assert_eq!(
        Wl::parse(b"interface eth0\n").unwrap().interfaces(),
        &[name("eth0")]
    );
}

#[test]
fn crlf_file_parses_like_lf() {
    let crlf = EXAMPLE.replace('\n', "\r\n");
    assert_eq!(
        Wl::parse(crlf.as_bytes()).unwrap(),
        Wl::parse(EXAMPLE.as_bytes()).unwrap()
    );
    // A dangling escape stays one even before `\r\n`.
    assert_eq!(
        err(b"in a b c\\\r\n"),
        kind_at(1, ConfigErrorKind::DanglingEscape)
    );
    // A lone `\r` elsewhere is a control character.
    assert_eq!(
        err(b"in a\rb c d\n"),
        kind_at(1, ConfigErrorKind::ControlChar)
    );
}

#[test]
fn tabs_and_runs_of_blanks_separate_fields() {
    let wl = Wl::parse(b"\tin\t\tpos-*  \t payment\tstart \t\n  interface \t eth0\t\n").unwrap();
    assert_eq!(
        wl.rules(),
        &[rule(Direction::In, "pos-*", "payment", "start")]
    );
    assert_eq!(wl.interfaces(), &[name("eth0")]);
}

#[test]
fn comments_and_blank_lines_anywhere() {
    let text = b"\n\n   \n# first\n\n\n   # indented\n\t# tabbed\nin a b c\n\n#x\nout a b c";
    let wl = Wl::parse(text).unwrap();
    assert_eq!(
        wl.rules(),
        &[
            rule(Direction::In, "a", "b", "c"),
            rule(Direction::Out, "a", "b", "c")
        ]
    );
    // Error line numbers count blank and comment lines.
    assert_eq!(
        err(b"\n# c\n\n  # d\n\nbogus a b c\n"),
        kind_at(6, ConfigErrorKind::UnknownKeyword)
    );
}

#[test]
fn last_line_without_newline_and_bom() {
    let wl = Wl::parse(b"\xEF\xBB\xBFin a b c").unwrap();
    assert_eq!(wl.rules(), &[rule(Direction::In, "a", "b", "c")]);
    let wl = Wl::parse(b"\xEF\xBB\xBF# comment\r\nout a b c\r\n").unwrap();
    assert_eq!(wl.rules(), &[rule(Direction::Out, "a", "b", "c")]);
    // A BOM anywhere else is part of the line (here, of the keyword).
    assert_eq!(
        err(b"in a b c\n\xEF\xBB\xBFin a b c\n"),
        kind_at(2, ConfigErrorKind::UnknownKeyword)
    );
}

#[test]
fn escaped_blank_stays_in_the_field() {
    let wl = Wl::parse(b"in my\\ app  payment\\  start\\ \\ x\n").unwrap();
    let r = &wl.rules()[0];
    assert_eq!(r.from.as_str(), "my\\ app");
    assert_eq!(r.to.as_str(), "payment\\ ");
    assert_eq!(r.notification.as_str(), "start\\ \\ x");
    assert!(r.from.matches("my app"));
    assert!(r.to.matches("payment "));
    assert!(r.notification.matches("start  x"));
    // ...but an escaped tab is still a control character in a pattern.
    assert_eq!(
        err(b"in a b\\\tc d\n"),
        kind_at(1, ConfigErrorKind::ControlChar)
    );
}

#[test]
fn unknown_keywords() {
    for line in [
        "IN a b c",
        "In a b c",
        "OUT a b c",
        "Interface eth0",
        "inn a b c",
        "allow a b c",
        "\\# not a comment",
        "*",
    ] {
        let text = format!("in a b c\n\n{line}\n");
        assert_eq!(
            err(text.as_bytes()),
            kind_at(3, ConfigErrorKind::UnknownKeyword),
            "{line:?}"
        );
    }
}

#[test]
fn wrong_field_counts() {
    let fc = |expected, found| ConfigErrorKind::FieldCount { expected, found };
    assert_eq!(err(b"in\n"), kind_at(1, fc(3, 0)));
    assert_eq!(err(b"in a\n"), kind_at(1, fc(3, 1)));
    assert_eq!(err(b"# x\nout a b\n"), kind_at(2, fc(3, 2)));
    assert_eq!(err(b"in a b c d\n"), kind_at(1, fc(3, 4)));
    assert_eq!(err(b"in a b c # comment\n"), kind_at(1, fc(3, 5)));
    assert_eq!(err(b"interface\n"), kind_at(1, fc(1, 0)));
    assert_eq!(err(b"\n\ninterface eth0 eth1\n"), kind_at(3, fc(1, 2)));
    let many = format!("in{}\n", " x".repeat(300));
    assert_eq!(err(many.as_bytes()), kind_at(1, fc(3, 255)));
}

#[test]
fn pattern_errors_in_rules() {
    assert_eq!(
        err(b"in a b c\nin a\\ x b c\\\n"),
        kind_at(2, ConfigErrorKind::DanglingEscape)
    );
    assert_eq!(
        err(b"out a\\ b c\n"),
        kind_at(
            1,
            ConfigErrorKind::FieldCount {
                expected: 3,
                found: 2
            }
        )
    );
    assert_eq!(
        err(b"\n\n\nout a b \\\n"),
        kind_at(4, ConfigErrorKind::DanglingEscape)
    );
    let long = format!("in a {} c\n", "x".repeat(MAX_PATTERN_LEN + 1));
    assert_eq!(err(long.as_bytes()), kind_at(1, ConfigErrorKind::TooLong));
    let fits = format!("in a {} c\n", "x".repeat(MAX_PATTERN_LEN));
    assert!(Wl::parse(fits.as_bytes()).is_ok());
    assert_eq!(
        err(b"in a\x01 b c\n"),
        kind_at(1, ConfigErrorKind::ControlChar)
    );
    assert_eq!(
        err(b"in a b c\x7f\n"),
        kind_at(1, ConfigErrorKind::ControlChar)
    );
    assert_eq!(
        err(b"in a b\x0bc d\n"),
        kind_at(1, ConfigErrorKind::ControlChar)
    );
}

#[test]
fn not_utf8_reports_its_line() {
    assert_eq!(
        err(b"in a b c\n# ok\nin a \xff c\nin a b c\n"),
        kind_at(3, ConfigErrorKind::NotUtf8)
    );
    // Comments must be UTF-8 too.
    assert_eq!(err(b"\n# caf\xe9\n"), kind_at(2, ConfigErrorKind::NotUtf8));
    // Truncated multi-byte sequence at the end of the file.
    assert_eq!(
        err(b"in a b c\nin a b \xc3"),
        kind_at(2, ConfigErrorKind::NotUtf8)
    );
    // UTF-8 in patterns is fine.
    let wl = Wl::parse("in café * notifié\n".as_bytes()).unwrap();
    assert!(wl.allows_in("café", "x", "notifié"));
}

#[test]
fn too_many_rules_and_interfaces() {
    type Small = Whitelist<2, 1>;
    assert_eq!(
        Small::parse(b"in a b c\n\nout a b c\n# x\nin d e f\n").unwrap_err(),
        kind_at(5, ConfigErrorKind::TooManyRules)
    );
    assert_eq!(
        Small::parse(b"in a b c\ninterface eth0\ninterface 10.0.0.1\n").unwrap_err(),
        kind_at(3, ConfigErrorKind::TooManyInterfaces)
    );
    // Exactly at capacity is fine; a repeated interface does not count twice.
    let wl = Small::parse(b"in a b c\nout a b c\ninterface eth0\ninterface eth0\n").unwrap();
    assert_eq!(wl.rules().len(), 2);
    assert_eq!(wl.interfaces(), &[name("eth0")]);
    assert_eq!(
        Whitelist::<0, 0>::parse(b"# nothing\nin a b c\n").unwrap_err(),
        kind_at(2, ConfigErrorKind::TooManyRules)
    );
}

#[test]
fn interfaces() {
    let wl = Whitelist::<1, 8>::parse(
        b"interface eth0:1\ninterface ::1\ninterface fe80::1\ninterface wlan0.100\ninterface 10.0.0.1\ninterface 10.0.0.1\n",
    )
    .unwrap();
    assert_eq!(
        wl.interfaces(),
        &[
            name("eth0:1"),
            Interface::Ip("::1".parse().unwrap()),
            Interface::Ip("fe80::1".parse().unwrap()),
            name("wlan0.100"),
            Interface::Ip("10.0.0.1".parse().unwrap()),
        ]
    );
    assert_eq!(
        Wl::parse(b"interface 10.0.0.1\n").unwrap().interfaces(),
        &[Interface::Ip("10.0.0.1".parse().unwrap())]
    );
    for bad in [
        "192.168.7.256",
        "1.2.3",
        "0eth",
        "eth/0",
        "eth*",
        "fe80::1%eth0",
        "é0",
        "-eth",
    ] {
        let text = format!("\ninterface {bad}\n");
        assert_eq!(
            err(text.as_bytes()),
            kind_at(2, ConfigErrorKind::BadInterface),
            "{bad:?}"
        );
    }
    let max = "e".repeat(MAX_IFACE_LEN);
    assert_eq!(Interface::parse(&max), Ok(name(&max)));
    let long = format!("interface {}e\n", max);
    assert_eq!(err(long.as_bytes()), kind_at(1, ConfigErrorKind::TooLong));
}

#[test]
fn error_messages_are_clear() {
    let msg = |text: &[u8]| err(text).to_string();
    assert_eq!(
        msg(b"\n\nin a b\n"),
        "line 3: \"in\" and \"out\" take 3 fields (from, to, notification), found 2"
    );
    assert_eq!(
        msg(b"interface\n"),
        "line 1: \"interface\" takes 1 field (an interface name or an IP address), found 0"
    );
    assert_eq!(
        msg(b"IN a b c\n"),
        "line 1: unknown keyword: a line starts with \"in\", \"out\" or \"interface\" \
         (lowercase), or with \"#\" for a comment"
    );
    assert_eq!(
        msg(b"\nin a b c\\\n"),
        "line 2: a pattern ends with a lone \"\\\" (write \"\\\\\" for a literal backslash)"
    );
    assert_eq!(msg(b"\xff"), "line 1: the line is not valid UTF-8 text");
    assert_eq!(
        Whitelist::<0, 0>::parse(b"in a b c")
            .unwrap_err()
            .to_string(),
        "line 1: too many \"in\"/\"out\" rules for the whitelist's fixed capacity"
    );
    assert_eq!(
        ConfigErrorKind::FieldCount {
            expected: 2,
            found: 1
        }
        .to_string(),
        "expected 2 fields after the keyword, found 1"
    );
    // Every kind has a non-empty message of its own.
    let kinds = [
        ConfigErrorKind::NotUtf8,
        ConfigErrorKind::UnknownKeyword,
        ConfigErrorKind::FieldCount {
            expected: 3,
            found: 0,
        },
        ConfigErrorKind::TooLong,
        ConfigErrorKind::DanglingEscape,
        ConfigErrorKind::ControlChar,
        ConfigErrorKind::TooManyRules,
        ConfigErrorKind::TooManyInterfaces,
        ConfigErrorKind::EmptyPattern,
        ConfigErrorKind::BadInterface,
    ];
    let msgs: StdVec<StdString> = kinds.iter().map(ToString::to_string).collect();
    for (i, m) in msgs.iter().enumerate() {
        assert!(!m.is_empty());
        assert!(!msgs[..i].contains(m), "duplicate message {m:?}");
    }
}

#[test]
fn push_rule_and_interface() {
    let mut wl = Whitelist::<1, 1>::new();
    let r = rule(Direction::In, "a*", "b", "c");
    assert_eq!(wl.push_rule(r.clone()), Ok(()));
    assert_eq!(wl.push_rule(r.clone()), Err(r));
    assert!(wl.allows_in("abc", "b", "c"));
    assert!(!wl.allows_out("abc", "b", "c"));
    assert_eq!(wl.push_interface(name("eth0")), Ok(()));
    assert_eq!(wl.push_interface(name("eth1")), Err(name("eth1")));
}

#[test]
fn display_round_trips() {
    let wl = Wl::parse(EXAMPLE.as_bytes()).unwrap();
    let mut text = StdString::new();
    for r in wl.rules() {
        text += &format!("{r}\n");
    }
    for i in wl.interfaces() {
        text += &format!("interface {i}\n");
    }
    assert!(text.starts_with("in pos-* payment start-transaction\n"));
    assert_eq!(Wl::parse(text.as_bytes()).unwrap(), wl);
}

proptest! {
    #[test]
    fn parse_never_panics(data in proptest::collection::vec(any::<u8>(), 0..256)) {
        let lines = data.split(|&b| b == b'\n').count();
        match Whitelist::<4, 2>::parse(&data) {
            Ok(wl) => {
                prop_assert!(wl.rules().len() <= 4);
                prop_assert!(wl.interfaces().len() <= 2);
            }
            Err(e) => {
                prop_assert!(e.line >= 1 && e.line <= lines);
                prop_assert!(!e.to_string().is_empty());
            }
        }
    }

    #[test]
    fn parse_structured_lines_never_panics(
        lines in proptest::collection::vec(
            "(in|out|interface|IN|#)?[ \t]{0,2}([a-z*\\\\é.:0-9 \t]{0,8})",
            0..8,
        ),
        crlf in any::<bool>(),
    ) {
        let sep = if crlf { "\r\n" } else { "\n" };
        let text = lines.join(sep);
        if let Ok(wl) = Wl::parse(text.as_bytes()) {
            // Whatever parsed must print and parse back to the same thing.
            let mut again = StdString::new();
            for r in wl.rules() {
                again += &format!("{r}\n");
            }
            for i in wl.interfaces() {
                again += &format!("interface {i}\n");
            }
            prop_assert_eq!(Wl::parse(again.as_bytes()).unwrap(), wl);
        }
    }
}
