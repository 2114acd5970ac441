//! Stripe's form encoding as the emulator reads it: bracketed keys (`a[b][0][c]`), one
//! allow-list of known parameters per endpoint, integers that must be integers, and Stripe's
//! own wording for what it refuses.

/// A parameter Stripe would refuse, with its message and the parameter's name.
#[derive(Debug)]
pub(super) struct ParamError {
    pub message: String,
    pub param: Option<String>,
}

impl ParamError {
    pub fn new(message: impl Into<String>, param: &str) -> ParamError {
        ParamError {
            message: message.into(),
            param: Some(param.to_string()),
        }
    }
}

/// The decoded `key=value` pairs of a form body or query string, in order.
pub(super) struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(encoded: &[u8]) -> Result<Params, ParamError> {
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(encoded)
            .map(Params)
            .map_err(|_| ParamError {
                message: "Invalid request: the body is not application/x-www-form-urlencoded"
                    .into(),
                param: None,
            })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn required(&self, key: &str) -> Result<&str, ParamError> {
        match self.get(key) {
            Some(value) if !value.is_empty() => Ok(value),
            _ => Err(ParamError::new(
                format!("Missing required param: {key}."),
                key,
            )),
        }
    }

    /// An integer parameter: Stripe refuses `30.00` or `30,00` where it wants cents.
    pub fn integer(&self, key: &str) -> Result<Option<i64>, ParamError> {
        self.get(key)
            .map(|value| {
                value
                    .parse::<i64>()
                    .map_err(|_| ParamError::new(format!("Invalid integer: {value}"), key))
            })
            .transpose()
    }

    /// The entries under `prefix[...]`, as (inner key, value).
    pub fn under<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.0.iter().filter_map(move |(k, v)| {
            let inner = k
                .strip_prefix(prefix)?
                .strip_prefix('[')?
                .strip_suffix(']')?;
            (!inner.contains('[')).then_some((inner, v.as_str()))
        })
    }

    /// The distinct indices of an array parameter (`line_items[0][...]`, `line_items[1]...`).
    pub fn indices(&self, name: &str) -> Vec<String> {
        let mut found: Vec<String> = Vec::new();
        for (key, _) in &self.0 {
            if let Some(segments) = segments(key)
                && segments.len() > 1
                && segments[0] == name
                && !found.iter().any(|i| i == segments[1])
            {
                found.push(segments[1].to_string());
            }
        }
        found
    }

    /// The values of `name[]` / `name[0]`... (e.g. `expand[]`).
    pub fn list(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| segments(k).is_some_and(|s| s.len() == 2 && s[0] == name))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Refuses any parameter no pattern allows; `*` matches one bracketed segment.
    pub fn only(&self, allowed: &[&str]) -> Result<(), ParamError> {
        for (key, _) in &self.0 {
            let Some(given) = segments(key) else {
                return Err(ParamError::new(
                    format!("Invalid parameter name: {key}"),
                    key,
                ));
            };
            let known = allowed.iter().any(|pattern| {
                segments(pattern).is_some_and(|p| {
                    p.len() == given.len() && p.iter().zip(&given).all(|(p, g)| *p == "*" || p == g)
                })
            });
            if !known {
                return Err(ParamError::new(
                    format!("Received unknown parameter: {key}"),
                    key,
                ));
            }
        }
        Ok(())
    }
}

/// `a[b][c]` into `["a", "b", "c"]`; `expand[]` into `["expand", ""]`; None if unbalanced.
fn segments(key: &str) -> Option<Vec<&str>> {
    let (head, mut rest) = match key.find('[') {
        Some(i) => (&key[..i], &key[i..]),
        None => (key, ""),
    };
    if head.is_empty() {
        return None;
    }
    let mut out = vec![head];
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[')?;
        let end = inner.find(']')?;
        out.push(&inner[..end]);
        rest = &inner[end + 1..];
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bracketed_keys_are_matched_segment_by_segment() {
        let params = Params::parse(
            b"line_items%5B0%5D%5Bprice_data%5D%5Bunit_amount%5D=3000&metadata%5Bk%5D=v&expand%5B%5D=x",
        )
        .unwrap();
        assert!(
            params
                .only(&[
                    "line_items[*][price_data][unit_amount]",
                    "metadata[*]",
                    "expand[*]"
                ])
                .is_ok()
        );
        let error = params.only(&["metadata[*]", "expand[*]"]).unwrap_err();
        assert_eq!(
            error.message,
            "Received unknown parameter: line_items[0][price_data][unit_amount]"
        );
        assert_eq!(params.indices("line_items"), vec!["0"]);
        assert_eq!(params.list("expand"), vec!["x"]);
        assert_eq!(
            params.under("metadata").collect::<Vec<_>>(),
            vec![("k", "v")]
        );
    }

    #[test]
    fn integers_must_be_integers() {
        let params = Params::parse(b"a=30.00&b=3000").unwrap();
        assert!(params.integer("a").is_err());
        assert_eq!(params.integer("b").unwrap(), Some(3000));
        assert_eq!(params.integer("c").unwrap(), None);
    }

    #[test]
    fn unbalanced_keys_are_refused() {
        let params = Params::parse(b"a%5Bb=1").unwrap();
        assert!(params.only(&["a[*]"]).is_err());
    }
}
