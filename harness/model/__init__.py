"""Layer 2, the model: LLaVA presets built as ``transformers.LlavaForConditionalGeneration``
(:mod:`.build`) and LoRA adapters on its language model (:mod:`.lora`)."""
