"""Graphical consoles in the browser: console tokens and the noVNC proxy (Nova's
console auth tokens and nova-novncproxy)."""
