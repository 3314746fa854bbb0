mod first {
    #[plugin_sdk::hook]
    pub fn analyze(text: &str) -> String {
        text.to_string()
    }
}

mod second {
    #[plugin_sdk::hook(name = "analyze")]
    pub fn analyse_again(text: &str) -> String {
        text.to_uppercase()
    }
}

fn main() {}
