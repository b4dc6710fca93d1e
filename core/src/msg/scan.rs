//! A small validating JSON scanner: no allocation, no recursion.
//!
//! This module checks JSON text against RFC 8259, strictly:
//!
//! - exactly one value, with optional whitespace (space, tab, LF, CR) before
//!   and after it and between tokens, nowhere else;
//! - strings: no raw control characters (below U+0020), only the nine
//!   escapes `\" \\ \/ \b \f \n \r \t \uXXXX`, and `\u` escapes that name
//!   UTF-16 surrogates must form a high-low pair;
//! - numbers: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
//!   (no leading zeros, no `+`, no bare `.`; the value is not range-checked);
//! - the literals `true`, `false`, `null`;
//! - no trailing commas, no comments, no NaN/Infinity;
//! - the text is UTF-8.
//!
//! Containers are nested at most [`MAX_DEPTH`] deep. The scanner walks them
//! with a loop and a 64-bit stack of container kinds (one bit per level:
//! object or array), so a hostile body can neither overflow the call stack nor
//! make the scanner allocate.
//!
//! Besides [`validate_value`], the module offers what the JSON message codec
//! needs to read a body in one pass: [`object_members`] walks the members of
//! a top-level object and yields each key and value as borrowed text
//! (validating as it goes), [`unescape`] decodes a string into a
//! `heapless::String`, and [`parse_i32`]/[`parse_u32`]/[`parse_u64`] read
//! integer members.
//!
//! **Decision**: duplicate keys are valid JSON here (RFC 8259 only says they
//! "SHOULD" be unique); the message codec decides what duplicates mean.

use core::fmt;

use heapless::String;

/// Deepest nesting of arrays and objects accepted. `[[1]]` has depth 2; a
/// scalar alone has depth 0.
pub const MAX_DEPTH: usize = 64;

// The container-kind stack is one `u64`, one bit per open container.
const _: () = assert!(MAX_DEPTH <= 64);

/// What is wrong with a JSON text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JsonErrorKind {
    /// The text ends inside a value, or holds no value at all.
    UnexpectedEnd,
    /// A byte that cannot start or continue a token at this place.
    UnexpectedByte,
    /// A number that breaks the grammar (leading zero, missing digits).
    InvalidNumber,
    /// An unknown backslash escape, or a `\u` without four hex digits.
    InvalidEscape,
    /// A `\u` escape naming a lone or misplaced UTF-16 surrogate.
    InvalidSurrogate,
    /// A raw control character (below U+0020) inside a string.
    ControlCharacter,
    /// The text is not UTF-8.
    InvalidUtf8,
    /// Arrays and objects nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// Something other than whitespace follows the value.
    TrailingData,
}

impl fmt::Display for JsonErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JsonErrorKind::UnexpectedEnd => "unexpected end of text",
            JsonErrorKind::UnexpectedByte => "unexpected character",
            JsonErrorKind::InvalidNumber => "invalid number",
            JsonErrorKind::InvalidEscape => "invalid escape sequence",
            JsonErrorKind::InvalidSurrogate => "unpaired UTF-16 surrogate escape",
            JsonErrorKind::ControlCharacter => "control character in string",
            JsonErrorKind::InvalidUtf8 => "invalid UTF-8",
            JsonErrorKind::TooDeep => "nesting too deep",
            JsonErrorKind::TrailingData => "data after the value",
        })
    }
}

/// Why a text is not valid JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonError {
    /// Byte offset where the problem was found.
    pub offset: usize,
    /// What the problem is.
    pub kind: JsonErrorKind,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid JSON at byte {}: {}", self.offset, self.kind)
    }
}

impl core::error::Error for JsonError {}

/// Checks that `text` is UTF-8 holding exactly one JSON value (surrounding
/// whitespace allowed).
pub fn validate_value(text: &[u8]) -> Result<(), JsonError> {
    let text = core::str::from_utf8(text).map_err(|e| JsonError {
        offset: e.valid_up_to(),
        kind: JsonErrorKind::InvalidUtf8,
    })?;
    validate_str(text)
}

/// Checks that `text` holds exactly one JSON value (surrounding whitespace
/// allowed). Like [`validate_value`], without the UTF-8 check a `&str`
/// does not need.
pub fn validate_str(text: &str) -> Result<(), JsonError> {
    let mut sc = Scanner::new(text.as_bytes());
    sc.skip_ws();
    sc.value(0)?;
    sc.skip_ws();
    if sc.pos < sc.b.len() {
        return Err(sc.err(JsonErrorKind::TrailingData));
    }
    Ok(())
}

/// The JSON type of a value, as its first byte tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueKind {
    /// `{...}`
    Object,
    /// `[...]`
    Array,
    /// `"..."`
    String,
    /// `-1.5e3`
    Number,
    /// `true` or `false`
    Bool,
    /// `null`
    Null,
}

/// The text between the quotes of a validated JSON string, escapes not yet
/// decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonStr<'a> {
    raw: &'a str,
    escaped: bool,
}

impl<'a> JsonStr<'a> {
    /// The text between the quotes, as written (escapes not decoded).
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// True when the text holds at least one backslash escape.
    pub fn has_escapes(&self) -> bool {
        self.escaped
    }

    /// The string without escapes, when it had none: the common case, which
    /// needs no copy.
    pub fn as_plain(&self) -> Option<&'a str> {
        if self.escaped {
            None
        } else {
            Some(self.raw)
        }
    }

    /// Decodes the string into inline storage of `N` bytes.
    pub fn unescape<const N: usize>(&self) -> Result<String<N>, UnescapeError> {
        unescape(self.raw)
    }

    /// True when the decoded string equals `s`.
    pub fn decodes_to(&self, s: &str) -> bool {
        if !self.escaped {
            return self.raw == s;
        }
        let mut rest = s.as_bytes();
        let mut buf = [0u8; 4];
        let mut it = Unescaper::new(self.raw);
        loop {
            match it.next_piece() {
                Ok(None) => return rest.is_empty(),
                Ok(Some(Piece::Text(t))) => match rest.strip_prefix(t.as_bytes()) {
                    Some(r) => rest = r,
                    None => return false,
                },
                Ok(Some(Piece::Char(c))) => {
                    let enc = c.encode_utf8(&mut buf).as_bytes();
                    match rest.strip_prefix(enc) {
                        Some(r) => rest = r,
                        None => return false,
                    }
                }
                Err(_) => return false,
            }
        }
    }
}

/// Why a string could not be unescaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnescapeError {
    /// The decoded string does not fit the storage.
    TooLong,
    /// The text holds an invalid escape (never for text this scanner
    /// validated).
    Invalid,
}

impl fmt::Display for UnescapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UnescapeError::TooLong => "decoded string is too long",
            UnescapeError::Invalid => "invalid escape sequence",
        })
    }
}

impl core::error::Error for UnescapeError {}

/// Decodes the escapes of `raw`, the text between the quotes of a JSON
/// string, into a string of at most `N` bytes.
pub fn unescape<const N: usize>(raw: &str) -> Result<String<N>, UnescapeError> {
    let mut out = String::new();
    let mut it = Unescaper::new(raw);
    while let Some(piece) = it.next_piece()? {
        match piece {
            Piece::Text(t) => out.push_str(t).map_err(|_| UnescapeError::TooLong)?,
            Piece::Char(c) => out.push(c).map_err(|_| UnescapeError::TooLong)?,
        }
    }
    Ok(out)
}

/// One step of unescaping: a run of literal text or one escaped character.
enum Piece<'a> {
    Text(&'a str),
    Char(char),
}

/// Splits the raw text of a string into literal runs and escapes.
struct Unescaper<'a> {
    rest: &'a str,
}

impl<'a> Unescaper<'a> {
    fn new(raw: &'a str) -> Self {
        Unescaper { rest: raw }
    }

    fn next_piece(&mut self) -> Result<Option<Piece<'a>>, UnescapeError> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        match self.rest.find('\\') {
            None => {
                let t = self.rest;
                self.rest = "";
                Ok(Some(Piece::Text(t)))
            }
            Some(0) => {
                let b = self.rest.as_bytes();
                let (c, len) = match b.get(1) {
                    Some(b'"') => ('"', 2),
                    Some(b'\\') => ('\\', 2),
                    Some(b'/') => ('/', 2),
                    Some(b'b') => ('\u{8}', 2),
                    Some(b'f') => ('\u{c}', 2),
                    Some(b'n') => ('\n', 2),
                    Some(b'r') => ('\r', 2),
                    Some(b't') => ('\t', 2),
                    Some(b'u') => {
                        let hi = hex4(b.get(2..6)).ok_or(UnescapeError::Invalid)?;
                        match hi {
                            0xD800..=0xDBFF => {
                                if b.get(6..8) != Some(b"\\u") {
                                    return Err(UnescapeError::Invalid);
                                }
                                let lo = hex4(b.get(8..12)).ok_or(UnescapeError::Invalid)?;
                                if !(0xDC00..=0xDFFF).contains(&lo) {
                                    return Err(UnescapeError::Invalid);
                                }
                                let cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                                (char::from_u32(cp).ok_or(UnescapeError::Invalid)?, 12)
                            }
                            _ => (char::from_u32(hi).ok_or(UnescapeError::Invalid)?, 6),
                        }
                    }
                    _ => return Err(UnescapeError::Invalid),
                };
                self.rest = self.rest.get(len..).ok_or(UnescapeError::Invalid)?;
                Ok(Some(Piece::Char(c)))
            }
            Some(i) => {
                let (t, rest) = self
                    .rest
                    .split_at_checked(i)
                    .ok_or(UnescapeError::Invalid)?;
                self.rest = rest;
                Ok(Some(Piece::Text(t)))
            }
        }
    }
}

/// Reads four hex digits.
fn hex4(digits: Option<&[u8]>) -> Option<u32> {
    let mut v = 0u32;
    for &d in digits? {
        v = (v << 4) | u32::from(hex_val(d)?);
    }
    Some(v)
}

#[inline]
fn hex_val(d: u8) -> Option<u8> {
    match d {
        b'0'..=b'9' => Some(d - b'0'),
        b'a'..=b'f' => Some(d - b'a' + 10),
        b'A'..=b'F' => Some(d - b'A' + 10),
        _ => None,
    }
}

/// One validated JSON value inside a larger text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Value<'a> {
    text: &'a str,
    kind: ValueKind,
    escaped: bool,
}

impl<'a> Value<'a> {
    /// The exact text of the value (no surrounding whitespace).
    pub fn text(&self) -> &'a str {
        self.text
    }

    /// The JSON type of the value.
    pub fn kind(&self) -> ValueKind {
        self.kind
    }

    /// The string, when the value is one.
    pub fn as_string(&self) -> Option<JsonStr<'a>> {
        if self.kind != ValueKind::String {
            return None;
        }
        let raw = self.text.get(1..self.text.len().saturating_sub(1))?;
        Some(JsonStr {
            raw,
            escaped: self.escaped,
        })
    }

    /// True for `null`.
    pub fn is_null(&self) -> bool {
        self.kind == ValueKind::Null
    }

    /// The value as an `i32` (see [`parse_i32`]).
    pub fn as_i32(&self) -> Option<i32> {
        parse_i32(self.text)
    }

    /// The value as a `u32` (see [`parse_u32`]).
    pub fn as_u32(&self) -> Option<u32> {
        parse_u32(self.text)
    }

    /// The value as a `u64` (see [`parse_u64`]).
    pub fn as_u64(&self) -> Option<u64> {
        parse_u64(self.text)
    }
}

/// One member of an object: key and value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member<'a> {
    /// The key.
    pub key: JsonStr<'a>,
    /// The value.
    pub value: Value<'a>,
}

/// Walks the members of the object that `text` holds, validating as it goes.
///
/// Returns `None` when the first non-whitespace byte of `text` is not `{`
/// (the text is then either another JSON value or not JSON; ask
/// [`validate_str`]). Otherwise the iterator yields each member in order and
/// then checks that only whitespace follows the object; the first error ends
/// the iteration.
///
/// **Decision**: each member value may nest [`MAX_DEPTH`] deep on its own:
/// the walked object does not count. So a value that [`validate_value`]
/// accepts alone is accepted as a member (a notification parameter must
/// survive being put into a message), and the iteration ends without an
/// error exactly when the text is valid JSON, except that the whole text may
/// nest one level deeper than [`validate_value`] allows.
pub fn object_members(text: &str) -> Option<Members<'_>> {
    let mut sc = Scanner::new(text.as_bytes());
    sc.skip_ws();
    if sc.peek() != Some(b'{') {
        return None;
    }
    sc.pos += 1;
    Some(Members {
        text,
        sc,
        state: MembersState::First,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MembersState {
    First,
    Next,
    Done,
}

/// Iterator over the members of a top-level object; see [`object_members`].
#[derive(Debug, Clone)]
pub struct Members<'a> {
    text: &'a str,
    sc: Scanner<'a>,
    state: MembersState,
}

impl<'a> Members<'a> {
    fn step(&mut self) -> Result<Option<Member<'a>>, JsonError> {
        let sc = &mut self.sc;
        match self.state {
            MembersState::Done => return Ok(None),
            MembersState::First => {
                sc.skip_ws();
                if sc.peek() == Some(b'}') {
                    sc.pos += 1;
                    return self.finish();
                }
            }
            MembersState::Next => {
                sc.skip_ws();
                match sc.peek() {
                    Some(b',') => {
                        sc.pos += 1;
                        sc.skip_ws();
                    }
                    Some(b'}') => {
                        sc.pos += 1;
                        return self.finish();
                    }
                    Some(_) => return Err(sc.err(JsonErrorKind::UnexpectedByte)),
                    None => return Err(sc.err(JsonErrorKind::UnexpectedEnd)),
                }
            }
        }
        self.state = MembersState::Next;
        let sc = &mut self.sc;
        // Key.
        match sc.peek() {
            Some(b'"') => {}
            Some(_) => return Err(sc.err(JsonErrorKind::UnexpectedByte)),
            None => return Err(sc.err(JsonErrorKind::UnexpectedEnd)),
        }
        let kstart = sc.pos + 1;
        let kescaped = sc.string()?;
        let kend = sc.pos - 1;
        sc.colon()?;
        // Value.
        let vstart = sc.pos;
        let (kind, escaped) = match sc.peek() {
            Some(b'"') => (ValueKind::String, sc.string()?),
            Some(b) => {
                let kind = kind_of(b).ok_or_else(|| sc.err(JsonErrorKind::UnexpectedByte))?;
                sc.value(0)?;
                (kind, false)
            }
            None => return Err(sc.err(JsonErrorKind::UnexpectedEnd)),
        };
        let key = self.slice(kstart, kend)?;
        let text = self.slice(vstart, self.sc.pos)?;
        Ok(Some(Member {
            key: JsonStr {
                raw: key,
                escaped: kescaped,
            },
            value: Value {
                text,
                kind,
                escaped,
            },
        }))
    }

    /// After the closing brace: only whitespace may follow.
    fn finish(&mut self) -> Result<Option<Member<'a>>, JsonError> {
        self.state = MembersState::Done;
        self.sc.skip_ws();
        if self.sc.pos < self.sc.b.len() {
            return Err(self.sc.err(JsonErrorKind::TrailingData));
        }
        Ok(None)
    }

    /// Token boundaries are ASCII bytes, so they are char boundaries; the
    /// error branch is unreachable but keeps this panic-free.
    fn slice(&self, start: usize, end: usize) -> Result<&'a str, JsonError> {
        self.text.get(start..end).ok_or(JsonError {
            offset: start,
            kind: JsonErrorKind::InvalidUtf8,
        })
    }
}

impl<'a> Iterator for Members<'a> {
    type Item = Result<Member<'a>, JsonError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.step() {
            Ok(Some(m)) => Some(Ok(m)),
            Ok(None) => None,
            Err(e) => {
                self.state = MembersState::Done;
                Some(Err(e))
            }
        }
    }
}

impl core::iter::FusedIterator for Members<'_> {}

const LOW_BITS: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// The bytes a string scan stops at: `"`, `\\` and control characters.
/// (Indexed by a `u8`, so never out of bounds.)
static STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// True when some byte of `x` is below `n` (exact for `n <= 128`).
#[inline]
fn has_byte_below(x: u64, n: u8) -> bool {
    x.wrapping_sub(LOW_BITS * u64::from(n)) & !x & HIGH_BITS != 0
}

/// True when some byte of `x` equals `b`.
#[inline]
fn has_byte(x: u64, b: u8) -> bool {
    has_byte_below(x ^ (LOW_BITS * u64::from(b)), 1)
}

/// True when one of the eight string bytes in `x` is `"`, `\` or a control
/// character.
#[inline]
fn needs_attention(x: u64) -> bool {
    has_byte(x, b'"') || has_byte(x, b'\\') || has_byte_below(x, 0x20)
}

/// The kind of value a byte starts, if any.
#[inline]
fn kind_of(b: u8) -> Option<ValueKind> {
    Some(match b {
        b'{' => ValueKind::Object,
        b'[' => ValueKind::Array,
        b'"' => ValueKind::String,
        b'-' | b'0'..=b'9' => ValueKind::Number,
        b't' | b'f' => ValueKind::Bool,
        b'n' => ValueKind::Null,
        _ => return None,
    })
}

/// Reads an integer member. Accepts JSON integers only: an optional `-`,
/// then `0` or a digit string without leading zero. **Decision**: fractions
/// and exponents are rejected even when the value is whole (`1.0`, `1e2`),
/// so every accepted text names its integer one way; `-0` is 0.
/// `None` when the text is not such an integer or it is out of range.
pub fn parse_i32(text: &str) -> Option<i32> {
    let (neg, mag) = parse_int(text)?;
    let v = i64::try_from(mag).ok()?;
    i32::try_from(if neg { -v } else { v }).ok()
}

/// Reads an unsigned integer member (see [`parse_i32`] for the grammar);
/// `-0` is accepted as 0, other negatives are out of range.
pub fn parse_u32(text: &str) -> Option<u32> {
    parse_u64(text).and_then(|v| u32::try_from(v).ok())
}

/// Reads an unsigned integer member (see [`parse_i32`] for the grammar);
/// `-0` is accepted as 0, other negatives are out of range.
pub fn parse_u64(text: &str) -> Option<u64> {
    match parse_int(text)? {
        (true, 0) => Some(0),
        (true, _) => None,
        (false, v) => Some(v),
    }
}

/// Sign and magnitude of a JSON integer.
fn parse_int(text: &str) -> Option<(bool, u64)> {
    let b = text.as_bytes();
    let (neg, digits) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, b),
    };
    match digits {
        [] => return None,
        [b'0'] => return Some((neg, 0)),
        [b'0', ..] => return None,
        _ => {}
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some((neg, v))
}

/// The cursor over the bytes of a text that is known to be UTF-8 (bytes at
/// or above 0x80 are only accepted inside strings, where they are copied
/// through).
#[derive(Debug, Clone)]
struct Scanner<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn new(b: &'a [u8]) -> Self {
        Scanner { b, pos: 0 }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    #[inline]
    fn err(&self, kind: JsonErrorKind) -> JsonError {
        JsonError {
            offset: self.pos,
            kind,
        }
    }

    /// UnexpectedEnd at the end of the text, else `kind`.
    #[inline]
    fn err_or_end(&self, kind: JsonErrorKind) -> JsonError {
        if self.pos >= self.b.len() {
            self.err(JsonErrorKind::UnexpectedEnd)
        } else {
            self.err(kind)
        }
    }

    #[inline]
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// After a key: whitespace, `:`, whitespace.
    #[inline]
    fn colon(&mut self) -> Result<(), JsonError> {
        self.skip_ws();
        if self.peek() != Some(b':') {
            return Err(self.err_or_end(JsonErrorKind::UnexpectedByte));
        }
        self.pos += 1;
        self.skip_ws();
        Ok(())
    }

    /// An object key at `pos` (after whitespace), then the colon.
    #[inline]
    fn key(&mut self) -> Result<(), JsonError> {
        if self.peek() != Some(b'"') {
            return Err(self.err_or_end(JsonErrorKind::UnexpectedByte));
        }
        self.string()?;
        self.colon()
    }

    /// Skips one value at `pos` (no leading whitespace). `depth` containers
    /// are already open around it.
    fn value(&mut self, depth: usize) -> Result<(), JsonError> {
        // Bit i of `stack` is 1 when the container opened i levels ago is an
        // object; bit 0 is the innermost open container.
        let mut stack: u64 = 0;
        let mut open: usize = 0;
        loop {
            // A value is expected at `pos`.
            match self.peek() {
                Some(c @ (b'{' | b'[')) => {
                    if depth + open >= MAX_DEPTH {
                        return Err(self.err(JsonErrorKind::TooDeep));
                    }
                    let is_obj = c == b'{';
                    self.pos += 1;
                    self.skip_ws();
                    let close = if is_obj { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.pos += 1;
                    } else {
                        stack = (stack << 1) | u64::from(is_obj);
                        open += 1;
                        if is_obj {
                            self.key()?;
                        }
                        continue;
                    }
                }
                Some(b'"') => {
                    self.string()?;
                }
                Some(b'-' | b'0'..=b'9') => self.number()?,
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                Some(_) => return Err(self.err(JsonErrorKind::UnexpectedByte)),
                None => return Err(self.err(JsonErrorKind::UnexpectedEnd)),
            }
            // A value just ended: close containers until one continues.
            loop {
                if open == 0 {
                    return Ok(());
                }
                self.skip_ws();
                let in_obj = stack & 1 == 1;
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        self.skip_ws();
                        if in_obj {
                            self.key()?;
                        }
                        break;
                    }
                    Some(b'}') if in_obj => {}
                    Some(b']') if !in_obj => {}
                    Some(_) => return Err(self.err(JsonErrorKind::UnexpectedByte)),
                    None => return Err(self.err(JsonErrorKind::UnexpectedEnd)),
                }
                self.pos += 1;
                stack >>= 1;
                open -= 1;
            }
        }
    }

    /// Skips a string starting at the `"` at `pos`; true when it holds
    /// escapes.
    fn string(&mut self) -> Result<bool, JsonError> {
        self.pos += 1;
        let mut escaped = false;
        loop {
            self.skip_plain();
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(escaped);
                }
                Some(b'\\') => {
                    escaped = true;
                    self.escape()?;
                }
                Some(_) => return Err(self.err(JsonErrorKind::ControlCharacter)),
                None => return Err(self.err(JsonErrorKind::UnexpectedEnd)),
            }
        }
    }

    /// Skips string bytes that need no attention (anything but `"`, `\`
    /// and control characters), eight at a time while it can.
    #[inline]
    fn skip_plain(&mut self) {
        let b = self.b;
        let mut i = self.pos;
        while let Some(chunk) = b.get(i..i + 8) {
            let Ok(word) = <[u8; 8]>::try_from(chunk) else {
                break;
            };
            if needs_attention(u64::from_le_bytes(word)) {
                break;
            }
            i += 8;
        }
        while let Some(&c) = b.get(i) {
            if STOP[usize::from(c)] {
                break;
            }
            i += 1;
        }
        self.pos = i;
    }

    /// Skips the escape at the `\` at `pos`.
    fn escape(&mut self) -> Result<(), JsonError> {
        let start = self.pos;
        self.pos += 1;
        match self.peek() {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.pos += 1;
                Ok(())
            }
            Some(b'u') => {
                self.pos += 1;
                let hi = self.hex4()?;
                match hi {
                    0xD800..=0xDBFF => {
                        if self.b.get(self.pos..self.pos + 2) != Some(b"\\u") {
                            return Err(JsonError {
                                offset: start,
                                kind: JsonErrorKind::InvalidSurrogate,
                            });
                        }
                        self.pos += 2;
                        let lo = self.hex4()?;
                        if (0xDC00..=0xDFFF).contains(&lo) {
                            Ok(())
                        } else {
                            Err(JsonError {
                                offset: start,
                                kind: JsonErrorKind::InvalidSurrogate,
                            })
                        }
                    }
                    0xDC00..=0xDFFF => Err(JsonError {
                        offset: start,
                        kind: JsonErrorKind::InvalidSurrogate,
                    }),
                    _ => Ok(()),
                }
            }
            Some(_) => Err(self.err(JsonErrorKind::InvalidEscape)),
            None => Err(self.err(JsonErrorKind::UnexpectedEnd)),
        }
    }

    /// Four hex digits of a `\u` escape.
    fn hex4(&mut self) -> Result<u32, JsonError> {
        let mut v = 0u32;
        for _ in 0..4 {
            let d = self
                .peek()
                .ok_or_else(|| self.err(JsonErrorKind::UnexpectedEnd))?;
            let d = hex_val(d).ok_or_else(|| self.err(JsonErrorKind::InvalidEscape))?;
            v = (v << 4) | u32::from(d);
            self.pos += 1;
        }
        Ok(v)
    }

    /// Skips a number starting at `pos` (a `-` or a digit).
    fn number(&mut self) -> Result<(), JsonError> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    return Err(self.err(JsonErrorKind::InvalidNumber));
                }
            }
            Some(b'1'..=b'9') => {
                self.pos += 1;
                self.digits();
            }
            _ => return Err(self.err_or_end(JsonErrorKind::InvalidNumber)),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.err_or_end(JsonErrorKind::InvalidNumber));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.err_or_end(JsonErrorKind::InvalidNumber));
            }
        }
        Ok(())
    }

    /// Skips ASCII digits; returns how many.
    #[inline]
    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    /// Skips the literal `lit`, which starts at `pos`.
    fn literal(&mut self, lit: &[u8]) -> Result<(), JsonError> {
        for &want in lit {
            match self.peek() {
                Some(got) if got == want => self.pos += 1,
                Some(_) => return Err(self.err(JsonErrorKind::UnexpectedByte)),
                None => return Err(self.err(JsonErrorKind::UnexpectedEnd)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String as StdString;
    use std::vec::Vec;

    fn kind(text: &str) -> Option<JsonErrorKind> {
        validate_value(text.as_bytes()).err().map(|e| e.kind)
    }

    #[test]
    fn valid_corpus() {
        for t in [
            "0",
            "-0",
            "1",
            "-1",
            "10",
            "1.5",
            "-0.0",
            "1e5",
            "1E5",
            "1e+5",
            "1e-5",
            "0.1e-10",
            "123456789012345678901234567890",
            "1e400",
            "true",
            "false",
            "null",
            "\"\"",
            "\"abc\"",
            "\"é日😀\"",
            "\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"",
            "\"\\u0000\\u00e9\\uFFFF\"",
            "\"\\ud83d\\ude00\"",
            "\"\\uD83D\\uDE00\"",
            "\"\u{7f}\"",
            "[]",
            "{}",
            "[ ]",
            "{ }",
            "[1,2,3]",
            "[1, [2, [3, {}]], \"x\"]",
            "{\"a\":1}",
            "{\"a\":{\"b\":[true,false,null]},\"c\":\"d\"}",
            "{\"a\":1,\"a\":2}",
            " \t\r\n{ \"a\" : [ 1 , 2 ] } \t\r\n",
            "  1  ",
        ] {
            assert_eq!(validate_value(t.as_bytes()), Ok(()), "{t:?}");
        }
    }

    #[test]
    fn invalid_corpus() {
        use JsonErrorKind::*;
        for (t, k) in [
            ("", UnexpectedEnd),
            ("   ", UnexpectedEnd),
            ("01", InvalidNumber),
            ("-01", InvalidNumber),
            ("00", InvalidNumber),
            ("-", UnexpectedEnd),
            ("- 1", InvalidNumber),
            ("+1", UnexpectedByte),
            (".5", UnexpectedByte),
            ("1.", UnexpectedEnd),
            ("1.e5", InvalidNumber),
            ("1e", UnexpectedEnd),
            ("1e+", UnexpectedEnd),
            ("1ex", InvalidNumber),
            ("0x10", TrailingData),
            ("NaN", UnexpectedByte),
            ("Infinity", UnexpectedByte),
            ("tru", UnexpectedEnd),
            ("trUe", UnexpectedByte),
            ("nul", UnexpectedEnd),
            ("True", UnexpectedByte),
            ("\"abc", UnexpectedEnd),
            ("\"a\nb\"", ControlCharacter),
            ("\"a\u{0}b\"", ControlCharacter),
            ("\"\t\"", ControlCharacter),
            ("\"\\x\"", InvalidEscape),
            ("\"\\'\"", InvalidEscape),
            ("\"\\u12\"", InvalidEscape),
            ("\"\\u12G4\"", InvalidEscape),
            ("\"\\u123", UnexpectedEnd),
            ("\"\\", UnexpectedEnd),
            ("\"\\ud83d\"", InvalidSurrogate),
            ("\"\\ud83dx\"", InvalidSurrogate),
            ("\"\\ud83d\\n\"", InvalidSurrogate),
            ("\"\\ud83d\\u0041\"", InvalidSurrogate),
            ("\"\\ud83d\\ud83d\"", InvalidSurrogate),
            ("\"\\ude00\"", InvalidSurrogate),
            ("\"\\ude00\\ud83d\"", InvalidSurrogate),
            ("[1,]", UnexpectedByte),
            ("[,1]", UnexpectedByte),
            ("[1 2]", UnexpectedByte),
            ("[1", UnexpectedEnd),
            ("[", UnexpectedEnd),
            ("]", UnexpectedByte),
            ("{\"a\":1,}", UnexpectedByte),
            ("{\"a\" 1}", UnexpectedByte),
            ("{\"a\":}", UnexpectedByte),
            ("{\"a\"}", UnexpectedByte),
            ("{a:1}", UnexpectedByte),
            ("{'a':1}", UnexpectedByte),
            ("{1:1}", UnexpectedByte),
            ("{\"a\":1]", UnexpectedByte),
            ("[1}", UnexpectedByte),
            ("{", UnexpectedEnd),
            ("{\"a\":1", UnexpectedEnd),
            ("1 2", TrailingData),
            ("{} {}", TrailingData),
            ("{}x", TrailingData),
            ("[] ,", TrailingData),
            ("// c\n1", UnexpectedByte),
            ("/* c */ 1", UnexpectedByte),
            ("1 // c", TrailingData),
            ("\u{a0}1", UnexpectedByte),
            ("\u{feff}1", UnexpectedByte),
            ("\u{c}1", UnexpectedByte),
        ] {
            assert_eq!(kind(t), Some(k), "{t:?}");
        }
        assert_eq!(
            validate_value(b"\"\xff\""),
            Err(JsonError {
                offset: 1,
                kind: InvalidUtf8
            })
        );
        assert_eq!(kind("\"\u{d7ff}\""), None);
    }

    #[test]
    fn error_offsets() {
        let e = validate_value(b"[1, 2,]").unwrap_err();
        assert_eq!(e.offset, 6);
        let e = validate_value(b"{\"a\": 01}").unwrap_err();
        assert_eq!((e.offset, e.kind), (7, JsonErrorKind::InvalidNumber));
        let e = validate_value(b"\"ab\\ud800\"").unwrap_err();
        assert_eq!((e.offset, e.kind), (3, JsonErrorKind::InvalidSurrogate));
        let e = validate_value(b"true false").unwrap_err();
        assert_eq!((e.offset, e.kind), (5, JsonErrorKind::TrailingData));
        assert_eq!(
            std::format!("{e}"),
            "invalid JSON at byte 5: data after the value"
        );
    }

    fn nested(depth: usize, open: &str, close: &str) -> StdString {
        let mut s = open.repeat(depth);
        s.push_str(&close.repeat(depth));
        s
    }

    #[test]
    fn depth_limit() {
        assert_eq!(kind(&nested(MAX_DEPTH, "[", "]")), None);
        assert_eq!(
            kind(&nested(MAX_DEPTH + 1, "[", "]")),
            Some(JsonErrorKind::TooDeep)
        );
        let obj = |d: usize| {
            let mut s = "{\"k\":".repeat(d - 1);
            s.push_str("{}");
            s.push_str(&"}".repeat(d - 1));
            s
        };
        assert_eq!(kind(&obj(MAX_DEPTH)), None);
        assert_eq!(kind(&obj(MAX_DEPTH + 1)), Some(JsonErrorKind::TooDeep));
        // Mixed kinds: the bit stack must remember every level's kind.
        let mut s = StdString::new();
        for i in 0..MAX_DEPTH {
            s.push_str(if i % 3 == 0 { "{\"k\":" } else { "[0," });
        }
        s.push('1');
        for i in (0..MAX_DEPTH).rev() {
            s.push(if i % 3 == 0 { '}' } else { ']' });
        }
        assert_eq!(kind(&s), None);
        // Wrong closer deep inside.
        assert!(s.contains("1}"));
        let bad = s.replacen("1}", "1]", 1);
        assert_eq!(kind(&bad), Some(JsonErrorKind::UnexpectedByte));
        // Huge depth: no stack overflow, just an error.
        assert_eq!(kind(&"[".repeat(100_000)), Some(JsonErrorKind::TooDeep));
        // Member values of a walked object get the whole depth budget: what
        // is valid alone is valid as a member (a parameter of depth 64 can
        // travel in a message), though the whole text is then one deeper.
        let inner = nested(MAX_DEPTH, "[", "]");
        let body = std::format!("{{\"p\":{inner}}}");
        assert!(object_members(&body).unwrap().all(|m| m.is_ok()));
        assert_eq!(kind(&body), Some(JsonErrorKind::TooDeep));
        let inner = nested(MAX_DEPTH + 1, "[", "]");
        let body = std::format!("{{\"p\":{inner}}}");
        let errs: Vec<_> = object_members(&body)
            .unwrap()
            .filter_map(Result::err)
            .collect();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].kind, JsonErrorKind::TooDeep);
    }

    #[test]
    fn members() {
        let text = " { \"a\" : 1 , \"b\\u0063\":[1, {\"x\":null}],\"s\":\"q\\\"\" } ";
        let ms: Vec<Member<'_>> = object_members(text).unwrap().map(Result::unwrap).collect();
        assert_eq!(ms.len(), 3);
        assert_eq!(ms[0].key.raw(), "a");
        assert!(!ms[0].key.has_escapes());
        assert_eq!(ms[0].value.text(), "1");
        assert_eq!(ms[0].value.kind(), ValueKind::Number);
        assert_eq!(ms[0].value.as_i32(), Some(1));
        assert_eq!(ms[1].key.raw(), "b\\u0063");
        assert!(ms[1].key.has_escapes());
        assert!(ms[1].key.decodes_to("bc"));
        assert!(!ms[1].key.decodes_to("b"));
        assert!(!ms[1].key.decodes_to("bcd"));
        assert_eq!(ms[1].value.text(), "[1, {\"x\":null}]");
        assert_eq!(ms[1].value.kind(), ValueKind::Array);
        assert_eq!(ms[2].value.kind(), ValueKind::String);
        let s = ms[2].value.as_string().unwrap();
        assert_eq!(s.raw(), "q\\\"");
        assert_eq!(s.unescape::<8>().unwrap().as_str(), "q\"");
        assert_eq!(s.as_plain(), None);
        assert!(ms[0].value.as_string().is_none());

        assert!(object_members("[]").is_none());
        assert!(object_members("").is_none());
        assert_eq!(object_members("{}").unwrap().count(), 0);
        // Errors end the iteration; trailing data is reported after the
        // members.
        let mut it = object_members("{\"a\":1} x").unwrap();
        assert!(it.next().unwrap().is_ok());
        assert_eq!(
            it.next().unwrap().unwrap_err().kind,
            JsonErrorKind::TrailingData
        );
        assert!(it.next().is_none());
        let mut it = object_members("{\"a\":01,\"b\":2}").unwrap();
        assert_eq!(
            it.next().unwrap().unwrap_err().kind,
            JsonErrorKind::InvalidNumber
        );
        assert!(it.next().is_none());
        for bad in [
            "{",
            "{\"a\"",
            "{\"a\":",
            "{\"a\":1,",
            "{,}",
            "{\"a\":1 \"b\":2}",
            "{\"a\":1,}",
        ] {
            assert!(object_members(bad).unwrap().any(|m| m.is_err()), "{bad:?}");
        }
    }

    #[test]
    fn unescaping() {
        assert_eq!(unescape::<16>("abc").unwrap().as_str(), "abc");
        assert_eq!(
            unescape::<32>("\\\"\\\\\\/\\b\\f\\n\\r\\t")
                .unwrap()
                .as_str(),
            "\"\\/\u{8}\u{c}\n\r\t"
        );
        assert_eq!(unescape::<16>("\\u00e9\\u65E5").unwrap().as_str(), "é日");
        assert_eq!(unescape::<16>("x\\ud83d\\ude00y").unwrap().as_str(), "x😀y");
        assert_eq!(unescape::<4>("abcd").unwrap().as_str(), "abcd");
        assert_eq!(unescape::<4>("abcde"), Err(UnescapeError::TooLong));
        assert_eq!(unescape::<4>("abc\\u00e9"), Err(UnescapeError::TooLong));
        assert_eq!(unescape::<16>("\\x"), Err(UnescapeError::Invalid));
        assert_eq!(unescape::<16>("\\"), Err(UnescapeError::Invalid));
        assert_eq!(unescape::<16>("\\u12"), Err(UnescapeError::Invalid));
        assert_eq!(unescape::<16>("\\ud83d"), Err(UnescapeError::Invalid));
        assert_eq!(unescape::<16>("\\ude00"), Err(UnescapeError::Invalid));
        assert_eq!(
            unescape::<16>("\\ud83d\\u0041"),
            Err(UnescapeError::Invalid)
        );
    }

    #[test]
    fn word_scan_matches_byte_scan() {
        // Every pair of byte values at every pair of positions, over fillers
        // that provoke borrows: the word test must agree with the table.
        for filler in [b'a', 0x20, 0x7f, 0x80, 0xff] {
            for c1 in 0..=255u8 {
                for c2 in 0..=255u8 {
                    for (i, j) in [(0, 7), (7, 0), (3, 4), (1, 1), (6, 2)] {
                        let mut w = [filler; 8];
                        w[i] = c1;
                        w[j] = c2;
                        let want = w.iter().any(|&c| STOP[usize::from(c)]);
                        assert_eq!(needs_attention(u64::from_le_bytes(w)), want, "{w:?}");
                    }
                }
            }
        }
        // And the scanner finds a stop byte at every offset of a long
        // string.
        for at in 0..40 {
            for stop in [b'"', b'\\', 0u8, 0x1f] {
                let mut t = std::vec![b'"'];
                t.extend(std::iter::repeat_n(b'x', at));
                t.push(stop);
                t.extend(std::iter::repeat_n(b'y', 20));
                t.push(b'"');
                let got = validate_value(&t);
                match stop {
                    b'"' => assert_eq!(got.unwrap_err().offset, at + 2),
                    b'\\' => assert_eq!(got.unwrap_err().kind, JsonErrorKind::InvalidEscape),
                    _ => assert_eq!(
                        got,
                        Err(JsonError {
                            offset: at + 1,
                            kind: JsonErrorKind::ControlCharacter
                        })
                    ),
                }
            }
        }
    }

    #[test]
    fn integers() {
        assert_eq!(parse_i32("0"), Some(0));
        assert_eq!(parse_i32("-0"), Some(0));
        assert_eq!(parse_i32("2147483647"), Some(i32::MAX));
        assert_eq!(parse_i32("-2147483648"), Some(i32::MIN));
        assert_eq!(parse_i32("2147483648"), None);
        assert_eq!(parse_i32("-2147483649"), None);
        assert_eq!(parse_i32("99999999999999999999999"), None);
        assert_eq!(parse_i32("1.0"), None);
        assert_eq!(parse_i32("1e2"), None);
        assert_eq!(parse_i32("01"), None);
        assert_eq!(parse_i32("+1"), None);
        assert_eq!(parse_i32("-"), None);
        assert_eq!(parse_i32(""), None);
        assert_eq!(parse_i32("\"1\""), None);
        assert_eq!(parse_u32("4294967295"), Some(u32::MAX));
        assert_eq!(parse_u32("4294967296"), None);
        assert_eq!(parse_u32("-1"), None);
        assert_eq!(parse_u32("-0"), Some(0));
        assert_eq!(parse_u64("18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64("18446744073709551616"), None);
        assert_eq!(parse_u64("-0"), Some(0));
        assert_eq!(parse_u64("-5"), None);
        assert_eq!(parse_u64("12a"), None);
    }
}
