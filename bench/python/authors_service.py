"""authors_service in Python nameko with nameko-sqlalchemy 1.5.0: the same service as
nameko-rs's `examples/src/authors.rs`, for the database benchmark (nameko-bench-db).

Its table is made at import from ``BENCH_DB_URI`` (nameko-sqlalchemy makes none).
"""

import os

from nameko.rpc import rpc
from nameko_sqlalchemy import Database
from sqlalchemy import BigInteger, Column, String, create_engine
from sqlalchemy.ext.declarative import declarative_base

Base = declarative_base()


class Author(Base):
    __tablename__ = "authors"
    id = Column(BigInteger, primary_key=True)
    name = Column(String, nullable=False)


_engine = create_engine(os.environ["BENCH_DB_URI"])
Base.metadata.create_all(_engine)
_engine.dispose()


class NotFound(Exception):
    pass


class AuthorsService:
    name = "authors_service"

    db = Database(Base)

    @rpc
    def create_author(self, name):
        author = Author(name=name)
        self.db.session.add(author)
        self.db.session.commit()
        return {"id": author.id, "name": author.name}

    @rpc(expected_exceptions=NotFound)
    def get_author(self, id):
        author = self.db.session.query(Author).get(id)
        if author is None:
            raise NotFound("no author with id {}".format(id))
        return {"id": author.id, "name": author.name}
