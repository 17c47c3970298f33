"""Pulumi programs that create tabjob's clusters and deploy charts/tabjob into them."""
