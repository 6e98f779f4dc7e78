"""eval: benchmark suites (math, code, retrieval, RAG QA), generation, metrics and
reports. Builds on `rag` and `rewards`.
"""
