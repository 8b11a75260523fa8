"""dsarbot: GDPR data subject requests for e-commerce shops, from first email to delivered answer."""
