//! Finds the line and column of a JSON pointer in the source text, so errors found after
//! parsing can still say where in the file they are.

/// The 1-based (line, column) where the value at `pointer` starts; the closest enclosing value
/// that exists when the pointer does not resolve; (1, 1) for text that is not JSON.
pub fn locate(text: &str, pointer: &str) -> (usize, usize) {
    let path: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect();
    let mut scanner = Scanner {
        bytes: text.as_bytes(),
        at: 0,
    };
    let offset = scanner.find(&path).unwrap_or(0);
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let column = before.iter().rev().take_while(|b| **b != b'\n').count() + 1;
    (line, column)
}

struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Scanner<'_> {
    fn skip_ws(&mut self) {
        while self.at < self.bytes.len() && self.bytes[self.at].is_ascii_whitespace() {
            self.at += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    /// Returns the offset of the value at `path` below the value starting here.
    fn find(&mut self, path: &[String]) -> Option<usize> {
        self.skip_ws();
        let start = self.at;
        let Some((head, rest)) = path.split_first() else {
            return Some(start);
        };
        match self.peek()? {
            b'{' => {
                self.at += 1;
                loop {
                    self.skip_ws();
                    match self.peek()? {
                        b'}' => return Some(start),
                        b',' => {
                            self.at += 1;
                            continue;
                        }
                        b'"' => {}
                        _ => return Some(start),
                    }
                    let key = self.string()?;
                    self.skip_ws();
                    if self.peek()? != b':' {
                        return Some(start);
                    }
                    self.at += 1;
                    if key == *head {
                        return self.find(rest).or(Some(start));
                    }
                    self.skip_value()?;
                }
            }
            b'[' => {
                let wanted: usize = head.parse().ok()?;
                self.at += 1;
                let mut index = 0;
                loop {
                    self.skip_ws();
                    match self.peek()? {
                        b']' => return Some(start),
                        b',' => {
                            self.at += 1;
                            index += 1;
                            continue;
                        }
                        _ => {}
                    }
                    if index == wanted {
                        return self.find(rest).or(Some(start));
                    }
                    self.skip_value()?;
                }
            }
            _ => Some(start),
        }
    }

    fn string(&mut self) -> Option<String> {
        let start = self.at;
        self.at += 1;
        while self.at < self.bytes.len() {
            match self.bytes[self.at] {
                b'\\' => self.at += 2,
                b'"' => {
                    self.at += 1;
                    let raw = std::str::from_utf8(&self.bytes[start..self.at]).ok()?;
                    return serde_json::from_str(raw).ok();
                }
                _ => self.at += 1,
            }
        }
        None
    }

    fn skip_value(&mut self) -> Option<()> {
        self.skip_ws();
        match self.peek()? {
            b'"' => {
                self.string()?;
            }
            b'{' | b'[' => {
                let mut depth = 0usize;
                while self.at < self.bytes.len() {
                    match self.bytes[self.at] {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.at += 1;
                                return Some(());
                            }
                        }
                        _ => {}
                    }
                    self.at += 1;
                }
                return None;
            }
            _ => {
                while self.at < self.bytes.len() && !b",}] \n\r\t".contains(&self.bytes[self.at]) {
                    self.at += 1;
                }
            }
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::locate;

    #[test]
    fn finds_nested_values_and_falls_back_to_the_parent() {
        let text = "{\n  \"a\": [1,\n    {\"b/c\": \"x\"}],\n  \"d\": {\"e\": [true]}\n}";
        assert_eq!(locate(text, ""), (1, 1));
        assert_eq!(locate(text, "/a/1/b~1c"), (3, 13));
        assert_eq!(locate(text, "/d/e/0"), (4, 15));
        assert_eq!(locate(text, "/d/zz"), (4, 8));
        assert_eq!(locate("not json", "/a"), (1, 1));
    }
}
