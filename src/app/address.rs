//! Which page an address shows. The server reads the address from the
//! request, the browser from its location, and both render the same page
//! from it: there is no client-side router (every link is a page load), so
//! the browser's bundle carries no routing code.

/// The query parameters the pages read: the only ones an address keeps, so
/// that the server's render and the browser's hydration see the same query.
pub const QUERY_KEYS: [&str; 4] = ["invalid", "name", "role", "token"];

/// A page's address: its path and the query parameters it was opened with,
/// already decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Address {
    path: String,
    query: Vec<(String, String)>,
}

/// The page an address shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/`.
    Lobby,
    /// `/battle/<id>`, with the id as written (its page says if it is not
    /// a valid one).
    Battle(String),
    /// Anything else.
    NotFound,
}

impl Address {
    /// The address of `path`, opened with the decoded `query` pairs (of
    /// which it keeps the [`QUERY_KEYS`]).
    pub fn new(path: &str, query: impl IntoIterator<Item = (String, String)>) -> Self {
        Self {
            path: path.to_owned(),
            query: query
                .into_iter()
                .filter(|(key, _)| QUERY_KEYS.contains(&key.as_str()))
                .collect(),
        }
    }

    /// The first value of the query parameter `key`, if any.
    pub fn query(&self, key: &str) -> Option<String> {
        self.query
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.clone())
    }

    /// The page this address shows.
    pub fn route(&self) -> Route {
        match self.path.as_str() {
            "/" => Route::Lobby,
            path => match path.strip_prefix("/battle/") {
                Some(id) if !id.is_empty() && !id.contains('/') => Route::Battle(id.to_owned()),
                _ => Route::NotFound,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(path: &str) -> Route {
        Address::new(path, []).route()
    }

    #[test]
    fn an_address_shows_the_lobby_a_battle_or_no_page() {
        assert_eq!(at("/"), Route::Lobby);
        assert_eq!(at("/battle/abc-123"), Route::Battle("abc-123".into()));
        assert_eq!(
            at("/battle/not%20valid"),
            Route::Battle("not%20valid".into())
        );
        for path in [
            "",
            "/lobby",
            "/battle",
            "/battle/",
            "/battle/abc/",
            "/battle/a/b",
            "//",
        ] {
            assert_eq!(at(path), Route::NotFound, "{path}");
        }
    }

    #[test]
    fn a_query_parameter_is_its_first_value() {
        let address = Address::new(
            "/battle/abc",
            [
                ("role".to_owned(), "spectator".to_owned()),
                ("name".to_owned(), "Ada".to_owned()),
                ("role".to_owned(), "player".to_owned()),
            ],
        );
        assert_eq!(address.query("role").as_deref(), Some("spectator"));
        assert_eq!(address.query("name").as_deref(), Some("Ada"));
        assert_eq!(address.query("token"), None);
    }

    #[test]
    fn an_address_keeps_only_the_parameters_the_pages_read() {
        let address = Address::new(
            "/battle/abc",
            [
                ("utm_source".to_owned(), "mail".to_owned()),
                ("name".to_owned(), "Ada".to_owned()),
            ],
        );
        assert_eq!(
            address,
            Address::new("/battle/abc", [("name".to_owned(), "Ada".to_owned())])
        );
        assert_eq!(address.query("utm_source"), None);
    }
}
