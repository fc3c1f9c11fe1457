"""mawskit training: MAE pre-pretraining, WSP and evaluation on timm ViT encoders."""
