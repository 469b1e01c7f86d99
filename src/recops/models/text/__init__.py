"""Text retrieval shared by the models: one tokenizer, one BM25, rank fusion.

Nothing here imports a model: the two-tower (titles, search) and the BM25
baseline both build on it, so the dependencies point one way.
"""

from recops.models.text.bm25 import BM25Index
from recops.models.text.fusion import RRF_K, reciprocal_rank_fusion
from recops.models.text.tokenize import TOKENIZER, tokenize

__all__ = ["RRF_K", "TOKENIZER", "BM25Index", "reciprocal_rank_fusion", "tokenize"]
