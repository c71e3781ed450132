"""Task models (classify, reward, embed pooling, rerank) and their save/load in the layout vLLM serves.

Import the modules you need: `mg_heads.pooling`, `.tokenize`, `.embedding`, `.classification`, `.lora`,
`.losses`, `.export`, `.load`. Importing `mg_heads` itself loads nothing heavy.
"""

__version__ = "0.1.0"
