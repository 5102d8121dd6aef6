//! The DynamoDB store of the Person API (work in progress: see issue 6).
