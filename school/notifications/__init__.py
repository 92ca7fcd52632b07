"""In-app notifications (通知), delivered once per key and passed on to a pluggable sender."""
