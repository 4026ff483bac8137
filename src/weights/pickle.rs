//! A small, panic-free interpreter for the subset of Python's pickle protocol (0 to 4) that
//! PyTorch checkpoints use.
//!
//! It builds a tree of [`Value`]s: calls (`GLOBAL` + `REDUCE`/`NEWOBJ`) stay symbolic, so the
//! caller decides what `torch._utils._rebuild_tensor_v2(...)` means. Persistent ids (`BINPERSID`)
//! become [`Value::Persistent`]. Malformed input gives an error, never a panic: every read is
//! bounds-checked and the memo is capped.

use std::collections::HashMap;

/// A decoded pickle value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// An integer wider than 64 bits, as little-endian two's-complement bytes.
    BigInt(Vec<u8>),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    /// A reference to `module.name` (a class or function).
    Global {
        module: String,
        name: String,
    },
    /// `callable(*args)`, kept symbolic; `state` is set by a later `BUILD`.
    Call {
        callable: Box<Value>,
        args: Box<Value>,
        state: Option<Box<Value>>,
    },
    /// The argument of a persistent id (for PyTorch: a storage description tuple).
    Persistent(Box<Value>),
}

impl Value {
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(*b as i64),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Items of a tuple or a list.
    pub fn as_seq(&self) -> Option<&[Value]> {
        match self {
            Value::Tuple(v) | Value::List(v) => Some(v),
            _ => None,
        }
    }

    /// `true` when this is a global named `module.name`.
    pub fn is_global(&self, module: &str, name: &str) -> bool {
        matches!(self, Value::Global { module: m, name: n } if m == module && n == name)
    }
}

/// Why a pickle stream could not be decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct PickleError(pub String);

impl std::fmt::Display for PickleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

type Result<T> = std::result::Result<T, PickleError>;

fn err<T>(msg: impl Into<String>) -> Result<T> {
    Err(PickleError(msg.into()))
}

/// The memo may not grow past this many entries (a checkpoint uses a few thousand).
const MAX_MEMO: usize = 1 << 20;

/// Stack items: values, and the MARK that `TUPLE`, `SETITEMS`, ... pop to.
#[derive(Debug)]
enum Item {
    Mark,
    Value(Value),
}

/// Reads one pickle (up to and including `STOP`) from `data` starting at `*pos`, advancing
/// `*pos` past it.
pub fn load(data: &[u8], pos: &mut usize) -> Result<Value> {
    Machine { data, pos, stack: Vec::new(), memo: HashMap::new() }.run()
}

struct Machine<'a, 'p> {
    data: &'a [u8],
    pos: &'p mut usize,
    stack: Vec<Item>,
    memo: HashMap<u32, Value>,
}

impl Machine<'_, '_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let start = *self.pos;
        let end = start.checked_add(n).filter(|&e| e <= self.data.len());
        match end {
            Some(end) => {
                *self.pos = end;
                Ok(&self.data[start..end])
            }
            None => err(format!("unexpected end of data at byte {start} (wanted {n} more)")),
        }
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn le<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn line(&mut self) -> Result<String> {
        let rest = &self.data[*self.pos..];
        let Some(len) = rest.iter().position(|&b| b == b'\n') else {
            return err("unterminated text line");
        };
        let text = String::from_utf8_lossy(&rest[..len]).into_owned();
        *self.pos += len + 1;
        Ok(text)
    }

    fn utf8(&mut self, n: usize) -> Result<String> {
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec()).or_else(|_| err("invalid UTF-8 in string"))
    }

    fn push(&mut self, v: Value) {
        self.stack.push(Item::Value(v));
    }

    fn pop(&mut self) -> Result<Value> {
        match self.stack.pop() {
            Some(Item::Value(v)) => Ok(v),
            Some(Item::Mark) => err("unexpected MARK on the stack"),
            None => err("stack underflow"),
        }
    }

    fn top(&mut self) -> Result<&mut Value> {
        match self.stack.last_mut() {
            Some(Item::Value(v)) => Ok(v),
            _ => err("expected a value on top of the stack"),
        }
    }

    fn pop_to_mark(&mut self) -> Result<Vec<Value>> {
        let Some(mark) = self.stack.iter().rposition(|i| matches!(i, Item::Mark)) else {
            return err("MARK not found");
        };
        let items = self.stack.split_off(mark + 1);
        self.stack.pop();
        Ok(items
            .into_iter()
            .filter_map(|i| match i {
                Item::Value(v) => Some(v),
                Item::Mark => None,
            })
            .collect())
    }

    fn memo_put(&mut self, id: u32) -> Result<()> {
        if self.memo.len() >= MAX_MEMO {
            return err("memo too large");
        }
        let v = self.top()?.clone();
        self.memo.insert(id, v);
        Ok(())
    }

    fn memo_get(&mut self, id: u32) -> Result<()> {
        match self.memo.get(&id) {
            Some(v) => {
                let v = v.clone();
                self.push(v);
                Ok(())
            }
            None => err(format!("memo entry {id} missing")),
        }
    }

    fn set_items(&mut self, items: Vec<Value>) -> Result<()> {
        if !items.len().is_multiple_of(2) {
            return err("odd number of items for a dict");
        }
        let mut it = items.into_iter();
        let target = self.top()?;
        let Value::Dict(entries) = target else {
            // Items set on a symbolic object (OrderedDict(), ...): turn it into a dict.
            if matches!(target, Value::Call { .. }) {
                let mut entries = Vec::new();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    entries.push((k, v));
                }
                *target = Value::Dict(entries);
                return Ok(());
            }
            return err("SETITEMS on a non-dict");
        };
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            entries.push((k, v));
        }
        Ok(())
    }

    fn append(&mut self, items: Vec<Value>) -> Result<()> {
        match self.top()? {
            Value::List(list) => {
                list.extend(items);
                Ok(())
            }
            _ => err("APPEND on a non-list"),
        }
    }

    fn call(&mut self) -> Result<()> {
        let args = self.pop()?;
        let callable = self.pop()?;
        // An OrderedDict() is a dict for our purposes; its items arrive by SETITEMS.
        let value = if callable.is_global("collections", "OrderedDict") {
            Value::Dict(Vec::new())
        } else {
            Value::Call { callable: Box::new(callable), args: Box::new(args), state: None }
        };
        self.push(value);
        Ok(())
    }

    fn build(&mut self) -> Result<()> {
        let state = self.pop()?;
        match self.top()? {
            Value::Call { state: s, .. } => *s = Some(Box::new(state)),
            // Attributes on a dict (OrderedDict._metadata) are not needed.
            Value::Dict(_) => {}
            _ => return err("BUILD on an unsupported object"),
        }
        Ok(())
    }

    fn run(mut self) -> Result<Value> {
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    let proto = self.u8()?;
                    if proto > 5 {
                        return err(format!("unsupported pickle protocol {proto}"));
                    }
                }
                0x95 => {
                    self.le::<8>()?; // FRAME: a length hint only
                }
                b'.' => return self.pop(),
                b'(' => self.stack.push(Item::Mark),
                b'N' => self.push(Value::None),
                0x88 => self.push(Value::Bool(true)),
                0x89 => self.push(Value::Bool(false)),
                b'J' => {
                    let v = i32::from_le_bytes(self.le()?);
                    self.push(Value::Int(v as i64));
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push(Value::Int(v as i64));
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.le()?);
                    self.push(Value::Int(v as i64));
                }
                0x8a => {
                    let n = self.u8()? as usize;
                    let bytes = self.take(n)?.to_vec();
                    self.push(long_from_le(bytes));
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.le()?);
                    self.push(Value::Float(v));
                }
                b'X' => {
                    let n = u32::from_le_bytes(self.le()?) as usize;
                    let s = self.utf8(n)?;
                    self.push(Value::Str(s));
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    let s = self.utf8(n)?;
                    self.push(Value::Str(s));
                }
                b'T' => {
                    let n = u32::from_le_bytes(self.le()?) as usize;
                    let b = self.take(n)?.to_vec();
                    self.push(Value::Str(String::from_utf8_lossy(&b).into_owned()));
                }
                b'U' => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.push(Value::Str(String::from_utf8_lossy(&b).into_owned()));
                }
                b'B' => {
                    let n = u32::from_le_bytes(self.le()?) as usize;
                    let b = self.take(n)?.to_vec();
                    self.push(Value::Bytes(b));
                }
                b'C' => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.push(Value::Bytes(b));
                }
                b'}' => self.push(Value::Dict(Vec::new())),
                b']' => self.push(Value::List(Vec::new())),
                b')' => self.push(Value::Tuple(Vec::new())),
                b't' => {
                    let items = self.pop_to_mark()?;
                    self.push(Value::Tuple(items));
                }
                b'l' => {
                    let items = self.pop_to_mark()?;
                    self.push(Value::List(items));
                }
                b'd' => {
                    let items = self.pop_to_mark()?;
                    self.push(Value::Dict(Vec::new()));
                    self.set_items(items)?;
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n {
                        return err("stack underflow in TUPLEn");
                    }
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.push(Value::Tuple(items));
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.push(Value::Global { module, name });
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Value::Str(module), Value::Str(name)) => self.push(Value::Global { module, name }),
                        _ => return err("STACK_GLOBAL needs two strings"),
                    }
                }
                b'q' => {
                    let id = self.u8()? as u32;
                    self.memo_put(id)?;
                }
                b'r' => {
                    let id = u32::from_le_bytes(self.le()?);
                    self.memo_put(id)?;
                }
                0x94 => {
                    let id = self.memo.len() as u32;
                    self.memo_put(id)?;
                }
                b'h' => {
                    let id = self.u8()? as u32;
                    self.memo_get(id)?;
                }
                b'j' => {
                    let id = u32::from_le_bytes(self.le()?);
                    self.memo_get(id)?;
                }
                b'Q' => {
                    let pid = self.pop()?;
                    self.push(Value::Persistent(Box::new(pid)));
                }
                b'R' | 0x81 => self.call()?,
                b'b' => self.build()?,
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.set_items(vec![k, v])?;
                }
                b'u' => {
                    let items = self.pop_to_mark()?;
                    self.set_items(items)?;
                }
                b'a' => {
                    let v = self.pop()?;
                    self.append(vec![v])?;
                }
                b'e' => {
                    let items = self.pop_to_mark()?;
                    self.append(items)?;
                }
                other => return err(format!("unsupported pickle opcode 0x{other:02x} at byte {}", *self.pos - 1)),
            }
        }
    }
}

/// A `LONG1` payload: little-endian two's complement, any width.
fn long_from_le(bytes: Vec<u8>) -> Value {
    if bytes.len() <= 8 {
        let negative = bytes.last().is_some_and(|b| b & 0x80 != 0);
        let mut buf = if negative { [0xffu8; 8] } else { [0u8; 8] };
        buf[..bytes.len()].copy_from_slice(&bytes);
        Value::Int(i64::from_le_bytes(buf))
    } else {
        Value::BigInt(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_all(data: &[u8]) -> Result<Value> {
        let mut pos = 0;
        load(data, &mut pos)
    }

    #[test]
    fn reads_small_ints_tuples_and_strings() {
        // pickle.dumps((1, 300, -2, 'ab'), protocol=2)
        let data = b"\x80\x02(K\x01M,\x01J\xfe\xff\xff\xffX\x02\x00\x00\x00abq\x00tq\x01.";
        let v = load_all(data).unwrap();
        assert_eq!(v, Value::Tuple(vec![Value::Int(1), Value::Int(300), Value::Int(-2), Value::Str("ab".into())]));
    }

    #[test]
    fn reads_torch_magic_number_as_big_int() {
        // pickle.dumps(0x1950a86a20f9469cfc6c, protocol=2)
        let full = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.";
        assert_eq!(load_all(full).unwrap(), Value::BigInt(b"l\xfc\x9cF\xf9 j\xa8P\x19".to_vec()));
        // Cut short inside the payload: an error, not a panic.
        assert!(load_all(&full[..8]).is_err());
    }

    #[test]
    fn ordered_dict_with_setitems_becomes_a_dict() {
        // pickle.dumps(collections.OrderedDict([('a', 1)]), protocol=2)
        let data = b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01X\x01\x00\x00\x00aq\x02K\x01s.";
        let v = load_all(data).unwrap();
        assert_eq!(v, Value::Dict(vec![(Value::Str("a".into()), Value::Int(1))]));
    }

    #[test]
    fn memo_and_persistent_ids() {
        // (pid, pid) where pid is memoised: BINPERSID then BINPUT then BINGET
        let data = b"\x80\x02X\x01\x00\x00\x00kQq\x00h\x00\x86.";
        let v = load_all(data).unwrap();
        let pid = Value::Persistent(Box::new(Value::Str("k".into())));
        assert_eq!(v, Value::Tuple(vec![pid.clone(), pid]));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for data in [&b""[..], b"\x80", b"\x80\x02t.", b"\x80\x02h\x05.", b"\xff\xff", b"X\xff\xff\xff\xff"] {
            assert!(load_all(data).is_err(), "{data:?}");
        }
    }
}
