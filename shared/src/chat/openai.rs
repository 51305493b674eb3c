//! OpenAI Chat Completions over the HttpClient port (in progress).
