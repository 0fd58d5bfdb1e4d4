"""Word embeddings: word2vec and GloVe training, vectors and their file formats, analogy and similarity evaluation."""
