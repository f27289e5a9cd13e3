"""Curation: dataset health now; embeddings, similar images and label-issue ranking later."""
